// A real OAuth client library (oauth4webapi) and a real JWT verifier (jose) against the real
// gateway process: RFC 8414 discovery, the client credentials grant with both client
// authentication methods, RFC 7662 introspection, and the token used on a protected route.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as oauth from "oauth4webapi";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { recordSecret } from "../helpers/secrets.ts";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";

let be: EchoBackend;
let gw: GatewayProcess;
const SECRET = "s3cret with+plus%and:colon";

beforeAll(async () => {
  be = await startEchoBackend();
  // No issuer configured: as Otoroshi, it is the request's scheme and Host (http://127.0.0.1:<port>),
  // which is exactly the URL the client discovers from.
  gw = await startGateway(`
plugins:
  - plugin: ClientCredentialService
    config: { domain: '127\\.0\\.0\\.1', secure: false, expiration: 600000 }
routes:
  - id: api
    frontend: { domains: [127.0.0.1/api] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
  - clientId: svc-a
    clientSecret: "${SECRET}"
    metadata: { scope: "orders:read orders:write" }
  - clientId: resource-server
    clientSecret: rs-secret-value
`);
});
afterAll(async () => {
  await gw?.stop();
  await be?.stop();
});

const insecure = { [oauth.allowInsecureRequests]: true } as const;

describe(`OAuth interop with real libraries (${RUNTIME})`, () => {
  for (
    const [name, auth] of [
      ["client_secret_basic", oauth.ClientSecretBasic],
      ["client_secret_post", oauth.ClientSecretPost],
    ] as const
  ) {
    test(`oauth4webapi: discovery, ${name} grant, introspection, then the token opens the route`, async () => {
      const issuer = new URL(gw.url);
      const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
      expect(as.token_endpoint).toBe(`${gw.url}/.well-known/otoroshi/oauth/token`);
      expect(as.scopes_supported).toEqual(["orders:read", "orders:write"]);

      const client: oauth.Client = { client_id: "svc-a" };
      const res = await oauth.clientCredentialsGrantRequest(as, client, auth(SECRET), new URLSearchParams({ scope: "orders:read" }), insecure);
      const tokens = await oauth.processClientCredentialsResponse(as, client, res);
      recordSecret(tokens.access_token);
      expect(tokens.token_type).toBe("bearer"); // oauth4webapi lower-cases it
      expect(tokens.scope).toBe("orders:read");
      expect(tokens.expires_in).toBe(600);

      const rs: oauth.Client = { client_id: "resource-server" };
      const info = await oauth.processIntrospectionResponse(as, rs, await oauth.introspectionRequest(as, rs, auth("rs-secret-value"), tokens.access_token, insecure));
      expect(info).toMatchObject({ active: true, client_id: "svc-a", sub: "svc-a", scope: "orders:read", iss: gw.url, token_type: "Bearer" });

      const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
      const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, { issuer: as.issuer, audience: "otoroshi", typ: "at+jwt" });
      expect(payload.client_id).toBe("svc-a");
      expect(protectedHeader.kid).toBe("otoroshi-jwt-signing");

      const call = await fetch(`${gw.url}/api/orders`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(call.status).toBe(200);
      const seen = new Map(((await call.json()) as EchoBody).headers);
      expect(seen.get("otoroshi-authenticated-client-id")).toBe("svc-a");
      expect(seen.get("authorization")).toBe(`Bearer ${tokens.access_token}`);
    });
  }

  test("oauth4webapi surfaces invalid_client for a wrong secret and invalid_scope for a scope not granted", async () => {
    const issuer = new URL(gw.url);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));
    const client: oauth.Client = { client_id: "svc-a" };
    const wrong = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost("nope-nope"), new URLSearchParams(), insecure);
    const e1 = await oauth.processClientCredentialsResponse(as, client, wrong).catch((e: unknown) => e);
    expect((e1 as oauth.ResponseBodyError).error).toBe("invalid_client");
    const scope = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost(SECRET), new URLSearchParams({ scope: "admin" }), insecure);
    const e2 = await oauth.processClientCredentialsResponse(as, client, scope).catch((e: unknown) => e);
    expect((e2 as oauth.ResponseBodyError).error).toBe("invalid_scope");
  });
});
