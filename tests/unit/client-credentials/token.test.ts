import { describe, expect, test } from "bun:test";
import {
  ALGS,
  basic,
  build,
  CLIENTS,
  decodeJwt,
  DEFAULT_KP,
  form,
  formEncode,
  HOST,
  json,
  NOW,
  recordingGuard,
  send,
  TOKEN_URL,
} from "./harness.ts";

const { svc } = build();
const GRANT = { grant_type: "client_credentials" };

async function expectError(res: Response, status: number, error: string, description?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/json");
  expect(res.headers.get("cache-control")).toBe("no-store");
  const body = (await res.json()) as Record<string, unknown>;
  expect(body.error).toBe(error);
  expect(typeof body.error_description).toBe("string");
  // RFC 6749 §5.2: error_description is printable ASCII without '"' or '\'.
  expect(body.error_description as string).toMatch(/^[\x20\x21\x23-\x5b\x5d-\x7e]+$/);
  if (description !== undefined) expect(body.error_description).toBe(description);
}

describe("token endpoint: success", () => {
  test("answers the seed's JSON request with a Bearer token and RFC 6749 §5.1 cache headers", async () => {
    const res = await send(svc, json(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("pragma")).toBe("no-cache");
    const body = (await res.json()) as Record<string, unknown>;
    expect(Object.keys(body).sort()).toEqual(["access_token", "expires_in", "scope", "token_type"]);
    expect(body.token_type).toBe("Bearer");
    expect(body.expires_in).toBe(3600);
    expect(body.scope).toBe("read write");
  });

  test("accepts an application/x-www-form-urlencoded request (RFC 6749 Appendix B)", async () => {
    const res = await send(svc, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }));
    expect(res.status).toBe(200);
  });

  test("matches the content type case-insensitively and allows a charset parameter", async () => {
    const body = JSON.stringify({ ...GRANT, client_id: "my-id", client_secret: "my-secret" });
    const res = await send(svc, json(TOKEN_URL, body, { "content-type": "Application/JSON ; charset=UTF-8" }));
    expect(res.status).toBe(200);
  });

  test("issues RFC 9068 claims: iss from scheme and Host, sub = client_id = cid, aud, scope, jti, iat/nbf/exp", async () => {
    const res = await send(svc, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }));
    const { access_token } = (await res.json()) as { access_token: string };
    const { header, payload } = decodeJwt(access_token);
    expect(header).toEqual({ alg: "ES256", typ: "at+jwt", kid: DEFAULT_KP });
    const iat = Math.floor(NOW / 1000);
    expect(payload).toMatchObject({
      iss: `http://${HOST}:8080`,
      sub: "my-id",
      client_id: "my-id",
      cid: "my-id",
      aud: "otoroshi",
      scope: "read write",
      iat,
      nbf: iat,
      exp: iat + 3600,
    });
    expect(payload.jti).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  test("gives every token its own jti", async () => {
    const ids = new Set<unknown>();
    for (let i = 0; i < 5; i++) {
      const res = await send(svc, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }));
      ids.add(decodeJwt(((await res.json()) as { access_token: string }).access_token).payload.jti);
    }
    expect(ids.size).toBe(5);
  });

  for (const alg of ALGS) {
    test(`signs with the key's own pair (jwt-sign-keypair) and alg ${alg}`, async () => {
      const id = `c-${alg.toLowerCase()}`;
      const res = await send(svc, form(TOKEN_URL, { ...GRANT, client_id: id, client_secret: "s3cret" }));
      expect(res.status).toBe(200);
      const { header } = decodeJwt(((await res.json()) as { access_token: string }).access_token);
      expect(header).toEqual({ alg, typ: "at+jwt", kid: `k-${alg.toLowerCase()}` });
    });
  }

  test("uses the configured issuer verbatim and the configured audience", async () => {
    const { svc: s } = build({ config: { issuer: "https://auth.example.com", audience: "my-api" } });
    const res = await send(s, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }));
    const { payload } = decodeJwt(((await res.json()) as { access_token: string }).access_token);
    expect(payload.iss).toBe("https://auth.example.com");
    expect(payload.aud).toBe("my-api");
  });

  test("derives an https issuer from X-Forwarded-Proto only when a trusted proxy sent it", async () => {
    const req = () => form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }, { "x-forwarded-proto": "https" });
    const iss = async (res: Response) => decodeJwt(((await res.json()) as { access_token: string }).access_token).payload.iss;
    expect(await iss(await send(svc, req(), { ip: "10.0.0.1", trustedProxies: ["10.0.0.0/8"] }))).toBe(`https://${HOST}:8080`);
    expect(await iss(await send(svc, req(), { ip: "192.0.2.1", trustedProxies: ["10.0.0.0/8"] }))).toBe(`http://${HOST}:8080`);
  });

  test("truncates expires_in and exp to whole seconds", async () => {
    const { svc: s } = build({ config: { expiration: 1999 } });
    const res = await send(s, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }));
    const body = (await res.json()) as { access_token: string; expires_in: number };
    expect(body.expires_in).toBe(1);
    const { payload } = decodeJwt(body.access_token);
    expect((payload.exp as number) - (payload.iat as number)).toBe(1);
  });

  test("accepts a key whose validUntil is in the future (Otoroshi W6) and an unexpired previous secret", async () => {
    expect((await send(svc, form(TOKEN_URL, { ...GRANT, client_id: "future", client_secret: "s3cret" }))).status).toBe(200);
    expect((await send(svc, form(TOKEN_URL, { ...GRANT, client_id: "rotated", client_secret: "old-secret" }))).status).toBe(200);
    const late = await send(svc, form(TOKEN_URL, { ...GRANT, client_id: "rotated", client_secret: "old-secret" }), { now: NOW + 120_000 });
    await expectError(late, 401, "invalid_client");
  });
});

describe("token endpoint: scope (RFC 6749 §3.3)", () => {
  const scopeOf = async (res: Response) => {
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; scope?: string };
    const claim = decodeJwt(body.access_token).payload.scope;
    expect(claim).toBe(body.scope);
    return body.scope;
  };
  const ask = (clientId: string, secret: string, scope?: string) =>
    send(svc, form(TOKEN_URL, { ...GRANT, client_id: clientId, client_secret: secret, ...(scope === undefined ? {} : { scope }) }));

  test("grants a requested subset, in the token and the response", async () => {
    expect(await scopeOf(await ask("my-id", "my-secret", "read"))).toBe("read");
  });
  test("grants the key's full scope when none is requested, or when scope is empty", async () => {
    expect(await scopeOf(await ask("my-id", "my-secret"))).toBe("read write");
    expect(await scopeOf(await ask("my-id", "my-secret", ""))).toBe("read write");
    expect(await scopeOf(await ask("my-id", "my-secret", "   "))).toBe("read write");
  });
  test("treats runs of spaces and repeated scopes as one set", async () => {
    expect(await scopeOf(await ask("my-id", "my-secret", " write   read write "))).toBe("write read");
  });
  test("omits scope for a key without scope metadata when none is requested", async () => {
    expect(await scopeOf(await ask("noscope", "noscope-secret"))).toBeUndefined();
  });
  test("refuses a scope the key does not have with 400 invalid_scope", async () => {
    await expectError(await ask("my-id", "my-secret", "read admin"), 400, "invalid_scope");
  });
  test("refuses any scope for a key without scope metadata", async () => {
    await expectError(await ask("noscope", "noscope-secret", "read"), 400, "invalid_scope");
  });
  test("refuses a scope token with characters RFC 6749 does not allow", async () => {
    await expectError(await ask("my-id", "my-secret", 'read\\"'), 400, "invalid_scope");
  });
});

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

  test("counts failed secrets of existing clients in the guard and answers 429 once locked out", async () => {
    const { guard, failures } = recordingGuard(2);
    const { svc: s } = build({ guard });
    const wrong = () => send(s, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "wrong" }));
    await expectError(await wrong(), 401, "invalid_client");
    await send(s, form(TOKEN_URL, { ...GRANT, client_id: "nobody", client_secret: "wrong" }));
    expect([...failures.keys()]).toEqual(["my-id|192.0.2.10"]);
    await wrong();
    const locked = await send(s, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }));
    expect(locked.headers.get("retry-after")).toBe("42");
    await expectError(locked, 429, "invalid_client", "too many failed attempts, retry later");
    // Another address is not locked out.
    expect((await send(s, form(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret" }), { ip: "192.0.2.99" })).status).toBe(200);
  });
});

describe("token endpoint: request errors", () => {
  test("refuses a missing grant_type with invalid_request", async () => {
    await expectError(await send(svc, form(TOKEN_URL, { client_id: "my-id", client_secret: "my-secret" })), 400, "invalid_request", "missing grant_type");
  });

  test("refuses other grant types with unsupported_grant_type", async () => {
    for (const grant_type of ["password", "authorization_code", "Client_Credentials"]) {
      const res = await send(svc, form(TOKEN_URL, { grant_type, client_id: "my-id", client_secret: "my-secret" }));
      await expectError(res, 400, "unsupported_grant_type");
    }
  });

  test("refuses a repeated parameter (RFC 6749 §3.1)", async () => {
    const res = await send(svc, form(TOKEN_URL, "grant_type=client_credentials&client_id=my-id&client_secret=my-secret&client_id=my-id"));
    await expectError(res, 400, "invalid_request", "parameter 'client_id' is repeated");
  });

  test("refuses malformed form bodies: bad escapes and invalid UTF-8", async () => {
    for (const body of ["grant_type=client_credentials&client_id=%zz", "grant_type=client_credentials&client_id=%FF", "grant_type=%"]) {
      await expectError(await send(svc, form(TOKEN_URL, body)), 400, "invalid_request");
    }
    const raw = new Request(TOKEN_URL, { method: "POST", headers: { host: HOST, "content-type": "application/x-www-form-urlencoded" }, body: new Uint8Array([0x61, 0x3d, 0xff]) });
    await expectError(await send(svc, raw), 400, "invalid_request", "request body is not valid UTF-8");
  });

  test("refuses malformed JSON, a non-object and non-string members", async () => {
    const bodies = ["{", "", "[]", '"x"', "null", JSON.stringify({ ...GRANT, client_id: "my-id", client_secret: 42 }), JSON.stringify({ ...GRANT, client_id: ["my-id"], client_secret: "my-secret" })];
    for (const body of bodies) await expectError(await send(svc, json(TOKEN_URL, body)), 400, "invalid_request");
  });

  test("treats a null JSON member as absent", async () => {
    const res = await send(svc, json(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret", scope: null }));
    expect(res.status).toBe(200);
  });

  test("refuses other content types and a missing one with invalid_request", async () => {
    for (const type of ["text/plain", "multipart/form-data; boundary=x", "application/jsonx", ""]) {
      const req = new Request(TOKEN_URL, { method: "POST", headers: type ? { host: HOST, "content-type": type } : { host: HOST }, body: "grant_type=client_credentials" });
      if (!type) req.headers.delete("content-type");
      await expectError(await send(svc, req), 400, "invalid_request");
    }
  });

  test("refuses a body over maxBodySize with 413, by Content-Length or by counting the stream", async () => {
    const { svc: s } = build({ config: { maxBodySize: 256 } });
    const big = "grant_type=client_credentials&pad=" + "x".repeat(300);
    await expectError(await send(s, form(TOKEN_URL, big)), 413, "invalid_request", "request body too large");
    const chunks = [new TextEncoder().encode("grant_type=client_credentials&pad="), new TextEncoder().encode("y".repeat(300))];
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        const next = chunks.shift();
        if (next) c.enqueue(next);
        else c.close();
      },
    });
    const req = new Request(TOKEN_URL, { method: "POST", headers: { host: HOST, "content-type": "application/x-www-form-urlencoded" }, body: stream, duplex: "half" } as RequestInit);
    expect(req.headers.get("content-length")).toBeNull();
    await expectError(await send(s, req), 413, "invalid_request", "request body too large");
    // Right at the limit is fine.
    const exact = "grant_type=client_credentials&client_id=my-id&client_secret=my-secret&pad=";
    expect((await send(s, form(TOKEN_URL, exact + "z".repeat(256 - exact.length)))).status).toBe(200);
  });

  test("fails closed with 500 server_error when a key's signing key pair is missing, never an HMAC", async () => {
    const { svc: s } = build({ clients: [{ clientId: "lost", clientSecret: "s3cret", metadata: { "jwt-sign-keypair": "k-missing" } }] });
    const res = await send(s, form(TOKEN_URL, { ...GRANT, client_id: "lost", client_secret: "s3cret" }));
    await expectError(res, 500, "server_error");
  });

  test("refuses a Host header that cannot make an issuer", async () => {
    const req = new Request(TOKEN_URL, { method: "POST", headers: { host: "oauth.oto.tools:8080/evil", "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=client_credentials&client_id=my-id&client_secret=my-secret" });
    const { svc: any } = build({ config: { domain: "*" } });
    await expectError(await send(any, req), 400, "invalid_request", "invalid Host header");
  });
});
