import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { otoBearerFor } from "../../src/plugins/apikeys/registry.ts";
import { hashSecret } from "../../src/plugins/secrets.ts";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { basic, buildGateway, type TestGateway } from "../helpers/gateway.ts";

let be: EchoBackend;
let gw: TestGateway;
const NOW = Date.parse("2026-06-01T00:00:00Z");

const yaml = (port: number) => `
routes:
  - id: open
    frontend: { domains: [open.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
  - id: private
    frontend: { domains: [api.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins:
      - plugin: Apikeys
  - id: partners
    groups: [partners]
    frontend: { domains: [partners.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins:
      - plugin: Apikeys
  - id: keep
    frontend: { domains: [keep.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins:
      - plugin: Apikeys
        config: { wipeBackendRequest: false }
  - id: optional
    frontend: { domains: [optional.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins:
      - plugin: Apikeys
        config: { mandatory: false }
  - id: custom-id
    frontend: { domains: [custom.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins:
      - plugin: Apikeys
        config: { clientIdHeaderName: X-Client }
apikeys:
  - clientId: app1
    clientSecret: "s3cret+/=:x"
  - clientId: hashed
    clientSecret: ${hashSecret("generated-high-entropy")}
  - clientId: simple
    clientSecret: unused
    allowClientIdOnly: true
  - clientId: disabled
    clientSecret: x
    enabled: false
  - clientId: expired
    clientSecret: x
    validUntil: 2026-01-01T00:00:00Z
  - clientId: expires-later
    clientSecret: x
    validUntil: ${NOW + 3600_000}
  - clientId: partner
    clientSecret: p
    authorizedEntities: [group_partners, route_private]
  - clientId: reader
    clientSecret: r
    readOnly: true
  - clientId: rotating
    clientSecret: new-one
    previousSecrets:
      - { secret: old-one, validUntil: ${NOW + 1000} }
      - { secret: older-one, validUntil: ${NOW - 1000} }
`;

beforeAll(async () => {
  be = await startEchoBackend();
  gw = buildGateway(yaml(be.port), { now: NOW });
});
afterAll(async () => {
  gw.close();
  await be.stop();
});

async function seen(res: Response): Promise<Map<string, string>> {
  expect(res.status).toBe(200);
  const body = (await res.json()) as EchoBody;
  return new Map(body.headers);
}

describe("Apikeys plugin", () => {
  test("no credentials: 401 No ApiKey provided with a challenge", async () => {
    const res = await gw.call("http://api.test/");
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ "Otoroshi-Error": "No ApiKey provided" });
    expect(res.headers.get("otoroshi-error")).toBe("true");
    expect(res.headers.get("otoroshi-error-msg")).toBe("No ApiKey provided");
    expect(res.headers.get("www-authenticate")).toContain("Basic");
  });

  test("Basic credentials (standard base64, any scheme case) pass and never reach the backend", async () => {
    const h = await seen(await gw.call("http://api.test/", { headers: { authorization: basic("app1", "s3cret+/=:x").replace("Basic", "bAsIc") } }));
    expect(h.has("authorization")).toBe(false);
    expect(h.get("otoroshi-authenticated-client-id")).toBe("app1");
  });

  test("Basic credentials in URL-safe base64 pass", async () => {
    const b64 = Buffer.from("app1:s3cret+/=:x").toString("base64url");
    await seen(await gw.call("http://api.test/", { headers: { authorization: `Basic ${b64}` } }));
  });

  test("custom headers pass and both are wiped", async () => {
    const h = await seen(await gw.call("http://api.test/", { headers: { "otoroshi-client-id": "app1", "otoroshi-client-secret": "s3cret+/=:x" } }));
    expect(h.has("otoroshi-client-id")).toBe(false);
    expect(h.has("otoroshi-client-secret")).toBe(false);
  });

  test("a hashed secret (sha256:) verifies", async () => {
    await seen(await gw.call("http://api.test/", { headers: { authorization: basic("hashed", "generated-high-entropy") } }));
  });

  test("every credential failure gives the same 401 (no client id enumeration)", async () => {
    const cases: Record<string, string>[] = [
      { authorization: basic("app1", "wrong") },
      { authorization: basic("nobody", "x") },
      { authorization: basic("disabled", "x") },
      { authorization: basic("expired", "x") },
      { authorization: "Basic !!!notbase64" },
      { "x-api-key": "app1" },
      { "x-api-key": "nobody" },
    ];
    const bodies = new Set<string>();
    for (const headers of cases) {
      const res = await gw.call("http://api.test/", { headers });
      expect(res.status).toBe(401);
      bodies.add(await res.text());
    }
    expect([...bodies]).toEqual([JSON.stringify({ "Otoroshi-Error": "Bad API key" })]);
  });

  test("x-api-key alone works only for keys with allowClientIdOnly, and is wiped (header, query, cookie)", async () => {
    expect((await seen(await gw.call("http://api.test/", { headers: { "x-api-key": "simple" } }))).has("x-api-key")).toBe(false);
    const res = await gw.call("http://api.test/p?x-api-key=simple&keep=1");
    const body = (await res.json()) as EchoBody;
    expect(body.query).toBe("?keep=1");
    const c = await seen(await gw.call("http://api.test/", { headers: { cookie: "a=1; x-api-key=simple; b=2" } }));
    expect(c.get("cookie")).toBe("a=1; b=2");
  });

  test("Basic credentials in the basic_auth query parameter pass and are wiped", async () => {
    const b64 = Buffer.from("app1:s3cret+/=:x").toString("base64");
    const res = await gw.call(`http://api.test/q?basic_auth=${encodeURIComponent(b64)}&z=9`);
    expect(((await res.json()) as EchoBody).query).toBe("?z=9");
  });

  test("an otoapk_ bearer passes and is wiped", async () => {
    const h = await seen(await gw.call("http://api.test/", { headers: { authorization: `Bearer ${otoBearerFor("app1", "s3cret+/=:x")}` } }));
    expect(h.has("authorization")).toBe(false);
    const bad = await gw.call("http://api.test/", { headers: { authorization: `Bearer otoapk_app1_${"0".repeat(64)}` } });
    expect(bad.status).toBe(401);
  });

  test("a JWT is refused when no ClientCredentialService issues tokens", async () => {
    const res = await gw.call("http://api.test/", { headers: { authorization: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhcHAxIn0.x" } });
    expect(res.status).toBe(401);
  });

  test("a valid key not authorized on the route gets 403", async () => {
    const res = await gw.call("http://partners.test/", { headers: { authorization: basic("app1", "s3cret+/=:x") } });
    expect(res.status).toBe(403);
    expect(res.headers.get("otoroshi-error-code")).toBe("ERR_APIKEY_UNAUTHORIZED");
    await seen(await gw.call("http://partners.test/", { headers: { authorization: basic("partner", "p") } }));
    await seen(await gw.call("http://api.test/", { headers: { authorization: basic("partner", "p") } })); // route_private
  });

  test("validUntil is honoured with the injected clock", async () => {
    await seen(await gw.call("http://api.test/", { headers: { authorization: basic("expires-later", "x") } }));
  });

  test("previous secrets work until their validUntil", async () => {
    await seen(await gw.call("http://api.test/", { headers: { authorization: basic("rotating", "new-one") } }));
    await seen(await gw.call("http://api.test/", { headers: { authorization: basic("rotating", "old-one") } }));
    expect((await gw.call("http://api.test/", { headers: { authorization: basic("rotating", "older-one") } })).status).toBe(401);
  });

  test("a read-only key may GET but not POST", async () => {
    await seen(await gw.call("http://api.test/", { headers: { authorization: basic("reader", "r") } }));
    const res = await gw.call("http://api.test/", { method: "POST", body: "x", headers: { authorization: basic("reader", "r") } });
    expect(res.status).toBe(403);
  });

  test("the client id header is set by the gateway, never copied from the client", async () => {
    const h = await seen(await gw.call("http://open.test/", { headers: { "otoroshi-authenticated-client-id": "forged" } }));
    expect(h.has("otoroshi-authenticated-client-id")).toBe(false); // even on a route without Apikeys
    const res = await gw.call("http://optional.test/", { headers: { "otoroshi-authenticated-client-id": "forged" } });
    expect((await seen(res)).has("otoroshi-authenticated-client-id")).toBe(false);
  });

  // Issue 8 item 6: a header one route asserts is removed on every route.
  test("a custom clientIdHeaderName is removed from client requests on every route, open ones too", async () => {
    const spoof = { "x-client": "admin" };
    expect((await seen(await gw.call("http://open.test/", { headers: spoof }))).has("x-client")).toBe(false);
    expect((await seen(await gw.call("http://optional.test/", { headers: spoof }))).has("x-client")).toBe(false);
    expect((await seen(await gw.call("http://api.test/", { headers: { ...spoof, authorization: basic("app1", "s3cret+/=:x") } }))).has("x-client")).toBe(false);
    const own = await seen(await gw.call("http://custom.test/", { headers: { ...spoof, authorization: basic("app1", "s3cret+/=:x") } }));
    expect(own.get("x-client")).toBe("app1");
  });

  // Issue 8 item 5: CGI/WSGI/PHP/Rack read `X_Client` and `X-Client` as one variable (HTTP_X_CLIENT).
  test("underscore spellings of asserted headers never reach a backend, on open and protected routes", async () => {
    const spoof = {
      Otoroshi_Authenticated_Client_Id: "admin",
      "Otoroshi_Authenticated-Client_Id": "admin",
      X_Client: "admin",
      "x_forwarded_for": "1.2.3.4",
      "x-unrelated_name": "kept",
    };
    const asserted = (h: Map<string, string>) => [...h.keys()].filter((k) => k.includes("_") && k !== "x-unrelated_name");
    const open = await seen(await gw.call("http://open.test/", { headers: spoof }));
    expect(asserted(open)).toEqual([]);
    expect(open.get("x-unrelated_name")).toBe("kept");
    const api = await seen(await gw.call("http://api.test/", { headers: { ...spoof, authorization: basic("app1", "s3cret+/=:x") } }));
    expect(asserted(api)).toEqual([]);
    expect(api.get("otoroshi-authenticated-client-id")).toBe("app1");
    const custom = await seen(await gw.call("http://custom.test/", { headers: { ...spoof, authorization: basic("app1", "s3cret+/=:x") } }));
    expect(asserted(custom)).toEqual([]);
    expect(custom.get("x-client")).toBe("app1");
  });

  test("wipeBackendRequest: false forwards the credentials", async () => {
    const h = await seen(await gw.call("http://keep.test/", { headers: { authorization: basic("app1", "s3cret+/=:x") } }));
    expect(h.get("authorization")).toBe(basic("app1", "s3cret+/=:x"));
  });

  test("mandatory: false lets anonymous calls through but still checks a presented credential", async () => {
    await seen(await gw.call("http://optional.test/"));
    expect((await gw.call("http://optional.test/", { headers: { authorization: basic("app1", "nope") } })).status).toBe(401);
  });

  test("an unrelated Authorization scheme is not mistaken for credentials", async () => {
    const h = await seen(await gw.call("http://api.test/", { headers: { "otoroshi-client-id": "app1", "otoroshi-client-secret": "s3cret+/=:x", authorization: "Digest abc" } }));
    expect(h.get("authorization")).toBe("Digest abc");
  });
});
