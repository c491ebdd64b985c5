import { describe, expect, test } from "bun:test";
import { basic, build, CLIENTS, expectError, form, formEncode, json, recordingGuard, send, TOKEN_URL } from "./harness.ts";

const { svc } = build();
const GRANT = { grant_type: "client_credentials" };

describe("token endpoint: client authentication (RFC 6749 §2.3.1)", () => {
  const odd = CLIENTS.find((c) => c.clientId === "odd")!.clientSecret;

  test("accepts HTTP Basic with form-encoded id and secret", async () => {
    const res = await send(svc, form(TOKEN_URL, GRANT, { authorization: basic(formEncode("odd"), formEncode(odd)) }));
    expect(res.status).toBe(200);
  });

  test("accepts HTTP Basic with the raw secret, as authlib sends it", async () => {
    const res = await send(svc, form(TOKEN_URL, GRANT, { authorization: basic("odd", odd) }));
    expect(res.status).toBe(200);
  });

  test("accepts the secret with + % : in the body", async () => {
    expect((await send(svc, form(TOKEN_URL, { ...GRANT, client_id: "odd", client_secret: odd }))).status).toBe(200);
    expect((await send(svc, json(TOKEN_URL, { ...GRANT, client_id: "odd", client_secret: odd }))).status).toBe(200);
  });

  test("matches the Basic scheme case-insensitively (RFC 9110 §11.1)", async () => {
    const auth = basic("my-id", "my-secret").replace("Basic", "bAsIc");
    expect((await send(svc, form(TOKEN_URL, GRANT, { authorization: auth }))).status).toBe(200);
  });

  test("allows a body client_id equal to the Basic one", async () => {
    const res = await send(svc, form(TOKEN_URL, { ...GRANT, client_id: "my-id" }, { authorization: basic("my-id", "my-secret") }));
    expect(res.status).toBe(200);
  });

  test("refuses Basic plus a body client_secret: two methods (400 invalid_request)", async () => {
    const res = await send(svc, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }, { authorization: basic("my-id", "my-secret") }));
    await expectError(res, 400, "invalid_request");
  });

  test("refuses a body client_id that differs from the Basic one", async () => {
    const res = await send(svc, form(TOKEN_URL, { ...GRANT, client_id: "noscope" }, { authorization: basic("my-id", "my-secret") }));
    await expectError(res, 400, "invalid_request");
  });

  test("asks for credentials with 401 invalid_client and a Basic challenge when there are none", async () => {
    for (const body of [GRANT, { ...GRANT, client_id: "my-id" }, { ...GRANT, client_secret: "my-secret" }]) {
      const res = await send(svc, form(TOKEN_URL, body));
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="otoroshi"');
      await expectError(res, 401, "invalid_client");
    }
  });

  const refusals: [string, string, string][] = [
    ["an unknown client", "nobody", "whatever"],
    ["a wrong secret", "my-id", "wrong"],
    ["a disabled key", "disabled", "s3cret"],
    ["an expired key", "expired", "s3cret"],
  ];
  for (const [what, id, secret] of refusals) {
    test(`refuses ${what} with 401 invalid_client and one description, challenging only Basic callers`, async () => {
      const post = await send(svc, form(TOKEN_URL, { ...GRANT, client_id: id, client_secret: secret }));
      expect(post.headers.get("www-authenticate")).toBeNull();
      await expectError(post, 401, "invalid_client", "client authentication failed");
      const viaBasic = await send(svc, form(TOKEN_URL, GRANT, { authorization: basic(id, secret) }));
      expect(viaBasic.headers.get("www-authenticate")).toBe('Basic realm="otoroshi"');
      await expectError(viaBasic, 401, "invalid_client", "client authentication failed");
    });
  }

  test("refuses malformed Basic credentials with 401 invalid_client", async () => {
    for (const auth of ["Basic !!!", "Basic " + btoa("no-colon"), "Basic " + btoa(":secret"), "Basic"]) {
      const res = await send(svc, form(TOKEN_URL, GRANT, { authorization: auth }));
      await expectError(res, 401, "invalid_client");
    }
  });

  test("counts failed secrets in the guard and answers 429 once locked out", async () => {
    const { guard, failures } = recordingGuard(2);
    const { svc: s } = build({ guard });
    const wrong = () => send(s, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "wrong" }));
    await expectError(await wrong(), 401, "invalid_client");
    await send(s, form(TOKEN_URL, { ...GRANT, client_id: "nobody", client_secret: "wrong" }));
    // Unknown ids are counted too (issue 8 item 12): otherwise the limiter itself tells them apart.
    expect([...failures.keys()]).toEqual(["my-id|192.0.2.10", "nobody|192.0.2.10"]);
    await wrong();
    const locked = await send(s, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }));
    expect(locked.headers.get("retry-after")).toBe("42");
    await expectError(locked, 429, "invalid_client", "too many failed attempts, retry later");
    // Another address is not locked out.
    expect((await send(s, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }), { ip: "192.0.2.99" })).status).toBe(200);
  });

  test("an unknown client id gets exactly the answers an existing one gets, 429 included", async () => {
    const { guard } = recordingGuard(3);
    const { svc: s } = build({ guard });
    const answers = async (clientId: string) => {
      const out: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await send(s, form(TOKEN_URL, { ...GRANT, client_id: clientId, client_secret: "wrong" }));
        out.push(`${res.status} ${res.headers.get("retry-after")} ${await res.text()}`);
      }
      return out;
    };
    const known = await answers("my-id");
    expect(known.map((a) => a.slice(0, 3))).toEqual(["401", "401", "401", "429", "429"]);
    expect(await answers("nobody-at-all")).toEqual(known);
  });
});
