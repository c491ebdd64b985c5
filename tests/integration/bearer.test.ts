// Gateway-issued access tokens on a protected route, through the whole gateway: what is accepted
// and every way a forged or stale token is refused.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac, sign as nodeSign } from "node:crypto";
import { generateKeyPairPem } from "../../src/keys/generate.ts";
import { importKeyPair } from "../../src/keys/keyring.ts";
import { signJwt } from "../../src/keys/jwt.ts";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { basic, buildGateway, type TestGateway } from "../helpers/gateway.ts";
import { recordSecret } from "../helpers/secrets.ts";

const indent = (pem: string) => pem.trim().split("\n").join("\n      ");
const es = generateKeyPairPem("ES256").privateKeyPem;
const ed = generateKeyPairPem("EdDSA").privateKeyPem;
const tlsOnly = generateKeyPairPem("ES256").privateKeyPem;
const foreign = generateKeyPairPem("ES256").privateKeyPem;
const NOW = Date.parse("2026-06-01T00:00:00Z");

let be: EchoBackend;
let gw: TestGateway;

const yaml = (port: number, enabled = true) => `
plugins:
  - plugin: ClientCredentialService
    config: { domain: 'oauth\\.test', secure: false, defaultKeyPair: sig-es }
routes:
  - id: api
    frontend: { domains: [api.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins: [{ plugin: Apikeys }]
  - id: other
    groups: [other]
    frontend: { domains: [other.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
  - { clientId: app, clientSecret: app-secret, enabled: ${enabled} }
  - clientId: bound
    clientSecret: bound-secret
    metadata: { jwt-sign-keypair: sig-ed }
keypairs:
  - id: sig-es
    privateKey: |
      ${indent(es)}
  - id: sig-ed
    privateKey: |
      ${indent(ed)}
  - id: tls-only
    privateKey: |
      ${indent(tlsOnly)}
`;

beforeAll(async () => {
  be = await startEchoBackend();
  gw = buildGateway(yaml(be.port), { now: NOW });
});
afterAll(async () => {
  gw.close();
  await be.stop();
});

async function token(id: string, secret: string): Promise<string> {
  const res = await gw.call("http://oauth.test/.well-known/otoroshi/oauth/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(id, secret) },
    body: "grant_type=client_credentials",
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = Math.floor(NOW / 1000);
  return { iss: "http://oauth.test", sub: "app", client_id: "app", cid: "app", aud: "otoroshi", iat, nbf: iat, exp: iat + 3600, jti: "x", ...extra };
}
// Every token presented (minted here or issued) joins the log scan's list (scripts/scan-logs.ts).
const call = (t: string, host = "api.test") => {
  recordSecret(t, "bearer token");
  return gw.call(`http://${host}/`, { headers: { authorization: `Bearer ${t}` } });
};

describe("gateway-issued bearer tokens on a route", () => {
  test("a token from the token endpoint reaches the backend, which sees it in Authorization", async () => {
    const t = await token("app", "app-secret");
    const res = await call(t);
    expect(res.status).toBe(200);
    const h = new Map(((await res.json()) as EchoBody).headers);
    expect(h.get("authorization")).toBe(`Bearer ${t}`);
    expect(h.get("otoroshi-authenticated-client-id")).toBe("app");
  });

  test("a token in the Otoroshi-Token header is moved to Authorization for the backend", async () => {
    const t = await token("app", "app-secret");
    const res = await gw.call("http://api.test/", { headers: { "otoroshi-token": t } });
    const h = new Map(((await res.json()) as EchoBody).headers);
    expect(h.has("otoroshi-token")).toBe(false);
    expect(h.get("authorization")).toBe(`Bearer ${t}`);
  });

  test("a key bound to its own key pair (jwt-sign-keypair) gets EdDSA tokens that verify", async () => {
    const t = await token("bound", "bound-secret");
    expect(JSON.parse(Buffer.from(t.split(".")[0], "base64url").toString()).alg).toBe("EdDSA");
    expect((await call(t)).status).toBe(200);
  });

  test("a token for a key bound to another key pair is refused even if validly signed by a gateway key", async () => {
    const t = signJwt(importKeyPair("sig-es", es), claims({ sub: "bound", client_id: "bound", cid: "bound" }));
    expect((await call(t)).status).toBe(401);
  });

  test("the key must still be authorized on the route", async () => {
    const t = await token("app", "app-secret");
    expect((await call(t, "other.test")).status).toBe(403);
  });

  const forged: [string, () => string][] = [
    ["alg none", () => `${b64({ alg: "none", typ: "at+jwt", kid: "sig-es" })}.${b64(claims())}.`],
    ["HS256 signed with the public key", () => {
      const pub = importKeyPair("sig-es", es).publicKey.export({ type: "spki", format: "pem" }) as string;
      const input = `${b64({ alg: "HS256", typ: "at+jwt", kid: "sig-es" })}.${b64(claims())}`;
      return `${input}.${createHmac("sha256", pub).update(input).digest("base64url")}`;
    }],
    ["HS256 signed with the client secret (Otoroshi's secret_signed)", () => {
      const input = `${b64({ alg: "HS256", typ: "JWT" })}.${b64(claims())}`;
      return `${input}.${createHmac("sha256", "app-secret").update(input).digest("base64url")}`;
    }],
    ["an unknown kid", () => signJwt(importKeyPair("nope", foreign), claims())],
    ["the kid of a key pair that is not a signing key", () => signJwt(importKeyPair("tls-only", tlsOnly), claims())],
    ["a foreign key using a gateway kid", () => signJwt(importKeyPair("sig-es", foreign), claims())],
    ["a tampered payload", () => {
      const [h, , s] = signJwt(importKeyPair("sig-es", es), claims()).split(".");
      return `${h}.${b64(claims({ sub: "admin" }))}.${s}`;
    }],
    ["an expired token", () => signJwt(importKeyPair("sig-es", es), claims({ exp: Math.floor(NOW / 1000) - 120 }))],
    ["a token not yet valid", () => signJwt(importKeyPair("sig-es", es), claims({ nbf: Math.floor(NOW / 1000) + 600 }))],
    ["a token without exp", () => signJwt(importKeyPair("sig-es", es), claims({ exp: undefined }))],
    ["a wrong audience", () => signJwt(importKeyPair("sig-es", es), claims({ aud: "someone-else" }))],
    ["a wrong issuer", () => signJwt(importKeyPair("sig-es", es), claims({ iss: "http://evil.test" }))],
    ["an RS256 header on an EC key", () => {
      const input = `${b64({ alg: "RS256", typ: "at+jwt", kid: "sig-es" })}.${b64(claims())}`;
      return `${input}.${nodeSign("sha256", Buffer.from(input), importKeyPair("x", generateKeyPairPem("RS256").privateKeyPem).privateKey).toString("base64url")}`;
    }],
  ];
  for (const [name, make] of forged) {
    test(`refuses ${name} with 401`, async () => {
      const res = await call(make());
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toContain("Bearer");
      expect(await res.json()).toEqual({ "Otoroshi-Error": "Bad API key" });
    });
  }

  test("a hand-made token with the right key, claims and kid is accepted (the forgeries above fail for their flaw only)", async () => {
    expect((await call(signJwt(importKeyPair("sig-es", es), claims()))).status).toBe(200);
  });

  test("disabling the key in the YAML revokes its tokens at the next reload", async () => {
    const t = await token("app", "app-secret");
    expect((await call(t)).status).toBe(200);
    expect(await gw.rewrite(yaml(be.port, false))).toBe("applied");
    expect((await call(t)).status).toBe(401);
    expect(await gw.rewrite(yaml(be.port, true))).toBe("applied");
    expect((await call(t)).status).toBe(200);
  });
});
