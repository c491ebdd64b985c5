// The gateway's own endpoints answer on the canonical path, like routes: every spelling of the
// status endpoint and of the OAuth endpoints gets the same answer as the plain one, and none of
// them falls through to a route's backend.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { buildGateway, type TestGateway } from "../helpers/gateway.ts";

let echo: EchoBackend;
let g: TestGateway;

beforeAll(async () => {
  echo = await startEchoBackend();
  g = buildGateway(`
plugins:
  - plugin: ClientCredentialService
    config: { domain: "*", secure: false, issuer: "http://oauth.test" }
routes:
  - id: catch-all
    frontend: { domains: [oauth.test, any.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${echo.port} }] }
`);
});
afterAll(async () => {
  g?.close();
  await echo?.stop();
});

const STATUS = ["/.well-known/otoroshi/status", "//.well-known/otoroshi/status", "/.well-known/otoroshi/%73tatus", "/.well-known/x/../otoroshi/status", "/%2Ewell-known/otoroshi/status"];
const JWKS = ["/.well-known/otoroshi/oauth/jwks.json", "//.well-known/otoroshi/oauth/jwks.json", "/.well-known/otoroshi/oauth/%6Awks.json", "/.well-known/otoroshi//oauth/jwks.json"];

describe("the gateway's endpoints answer every spelling of their path alike", () => {
  for (const path of STATUS) {
    test(`status endpoint: ${path}`, async () => {
      const res = await g.call(`http://any.test${path}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { generation: number }).generation).toBe(1);
    });
    test(`status endpoint from a foreign address stays hidden: ${path}`, async () => {
      const res = await g.call(`http://any.test${path}`, {}, { remoteAddress: "203.0.113.9" });
      expect(res.status).toBe(404);
      expect(res.headers.get("otoroshi-error-code")).toBe("ERR_ROUTE_NOT_FOUND");
    });
  }
  for (const path of JWKS) {
    test(`JWKS: ${path}`, async () => {
      const res = await g.call(`http://oauth.test${path}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { keys: unknown[] }).keys.length).toBe(1);
    });
  }
  test("a token request on a respelled path is the token endpoint (not the route's backend)", async () => {
    const res = await g.call("http://oauth.test//.well-known/otoroshi/oauth/%74oken", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "client_credentials", client_id: "nobody", client_secret: "nothing" }),
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe("invalid_client");
  });
});
