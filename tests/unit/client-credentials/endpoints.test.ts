import { describe, expect, test } from "bun:test";
import { ALGS, BASE, build, context, DEFAULT_KP, form, get, INTROSPECT_URL, JWKS_URL, send, TOKEN_URL } from "./harness.ts";

const { svc } = build();
const METADATA_URL = `${BASE}/.well-known/oauth-authorization-server`;

describe("routing", () => {
  test("matches the domain regex case-insensitively, anchored, on the oauth paths only", () => {
    const m = (url: string, host?: string) => svc.matches(context(get(url, "GET", host ? { host } : {})));
    expect(m(JWKS_URL)).toBe(true);
    expect(m(JWKS_URL, "OAUTH.OTO.TOOLS:8080")).toBe(true);
    expect(m(JWKS_URL, "oauth.oto.tools.")).toBe(true);
    expect(m(JWKS_URL, "xoauth.oto.tools")).toBe(false);
    expect(m(JWKS_URL, "oauth.oto.tools.evil.com")).toBe(false);
    expect(m(`${BASE}/.well-known/otoroshi/oauth/anything`)).toBe(true);
    expect(m(METADATA_URL)).toBe(true);
    expect(m(`${METADATA_URL}/tenant`)).toBe(true);
    expect(m(`${METADATA_URL}x`)).toBe(false);
    expect(m(`${BASE}/.well-known/otoroshi/oauthx/token`)).toBe(false);
    expect(m(`${BASE}/api/token`)).toBe(false);
  });

  test('domain "*" matches any host', () => {
    const { svc: any } = build({ config: { domain: "*" } });
    expect(any.matches(context(get("http://whatever.example/.well-known/otoroshi/oauth/jwks.json")))).toBe(true);
  });

  test("answers a wrong method with 405, Allow and an RFC 6749-shaped body", async () => {
    const cases: [string, string, string][] = [
      [TOKEN_URL, "GET", "POST"],
      [TOKEN_URL, "PUT", "POST"],
      [INTROSPECT_URL, "GET", "POST"],
      [JWKS_URL, "POST", "GET, HEAD"],
      [JWKS_URL, "DELETE", "GET, HEAD"],
      [METADATA_URL, "POST", "GET, HEAD"],
    ];
    for (const [url, method, allow] of cases) {
      const res = await send(svc, get(url, method));
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe(allow);
      expect(await res.json()).toEqual({ error: "invalid_request", error_description: "method not allowed" });
    }
  });

  test("answers HEAD on the token endpoint with 405 and no body", async () => {
    const res = await send(svc, get(TOKEN_URL, "HEAD"));
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(await res.text()).toBe("");
  });

  test("answers an unknown path under the oauth prefixes with a JSON 404", async () => {
    for (const url of [`${BASE}/.well-known/otoroshi/oauth/nope`, `${BASE}/.well-known/otoroshi/oauth/`, `${METADATA_URL}/tenant`]) {
      const res = await send(svc, get(url));
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: "not_found", error_description: "resource not found" });
    }
  });

  test("ignores the query string and a trailing slash (Otoroshi W13)", async () => {
    expect((await send(svc, get(`${JWKS_URL}?v=1`))).status).toBe(200);
    expect((await send(svc, get(`${JWKS_URL}/`))).status).toBe(200);
    const res = await send(svc, form(`${TOKEN_URL}?foo=bar`, { grant_type: "client_credentials", client_id: "my-id", client_secret: "my-secret" }));
    expect(res.status).toBe(200);
  });
});

describe("secure: true", () => {
  const { svc: secure } = build({ config: { secure: true } });
  const requests = () => [
    get(JWKS_URL),
    get(METADATA_URL),
    form(TOKEN_URL, { grant_type: "client_credentials", client_id: "my-id", client_secret: "my-secret" }),
    form(INTROSPECT_URL, { token: "x", client_id: "my-id", client_secret: "my-secret" }),
  ];

  test("refuses every endpoint over plain http with 400 invalid_request", async () => {
    for (const req of requests()) {
      const res = await send(secure, req);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: "invalid_request", error_description: "https is required" });
    }
  });

  test("does not trust X-Forwarded-Proto from an untrusted peer", async () => {
    const req = get(JWKS_URL, "GET", { "x-forwarded-proto": "https" });
    expect((await send(secure, req, { ip: "203.0.113.5", trustedProxies: ["10.0.0.0/8"] })).status).toBe(400);
  });

  test("answers over TLS and behind a trusted TLS-terminating proxy", async () => {
    for (const req of requests()) expect((await send(secure, req, { secure: true })).status).toBeLessThan(400);
    const proxied = get(JWKS_URL, "GET", { "x-forwarded-proto": "https" });
    expect((await send(secure, proxied, { ip: "10.1.2.3", trustedProxies: ["10.0.0.0/8"] })).status).toBe(200);
  });
});

describe("JWKS", () => {
  test("lists the public half of every signing key pair with kid, kty, alg and use: sig", async () => {
    const res = await send(svc, get(JWKS_URL));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(res.headers.get("cache-control")).toBe("public, max-age=300");
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(keys.map((k) => k.kid).sort()).toEqual([DEFAULT_KP, ...ALGS.map((a) => `k-${a.toLowerCase()}`)].sort());
    for (const k of keys) {
      expect(k.use).toBe("sig");
      expect(typeof k.kty).toBe("string");
      expect(typeof k.alg).toBe("string");
      for (const priv of ["d", "p", "q", "dp", "dq", "qi"]) expect(k[priv]).toBeUndefined();
    }
    expect(keys.find((k) => k.kid === "k-es512")).toMatchObject({ kty: "EC", crv: "P-521", alg: "ES512" });
    expect(keys.find((k) => k.kid === "k-eddsa")).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA" });
  });

  test("answers HEAD with the same headers and no body", async () => {
    const full = await send(svc, get(JWKS_URL));
    const head = await send(svc, get(JWKS_URL, "HEAD"));
    expect(head.status).toBe(200);
    for (const h of ["content-type", "cache-control", "content-length"]) expect(head.headers.get(h)).toBe(full.headers.get(h));
    expect(Number(head.headers.get("content-length"))).toBe(new TextEncoder().encode(await full.text()).byteLength);
    expect(await head.text()).toBe("");
  });
});

describe("RFC 8414 metadata", () => {
  test("derives the issuer and endpoint URLs from the request when no issuer is set", async () => {
    const res = await send(svc, get(METADATA_URL));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual({
      issuer: BASE,
      token_endpoint: TOKEN_URL,
      jwks_uri: JWKS_URL,
      introspection_endpoint: INTROSPECT_URL,
      grant_types_supported: ["client_credentials"],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
    });
  });

  test("uses a configured issuer, serving an issuer with a path at the RFC 8414 §3 location too", async () => {
    const { svc: s } = build({ config: { issuer: "https://auth.example.com/tenant-a" }, scopes: ["write", "read", "read"] });
    for (const url of [METADATA_URL, `${METADATA_URL}/tenant-a`, `${METADATA_URL}/tenant-a/`]) {
      const doc = (await (await send(s, get(url))).json()) as Record<string, unknown>;
      expect(doc.issuer).toBe("https://auth.example.com/tenant-a");
      expect(doc.token_endpoint).toBe("https://auth.example.com/.well-known/otoroshi/oauth/token");
      expect(doc.jwks_uri).toBe("https://auth.example.com/.well-known/otoroshi/oauth/jwks.json");
      expect(doc.scopes_supported).toEqual(["read", "write"]);
    }
    expect((await send(s, get(`${METADATA_URL}/other`))).status).toBe(404);
  });

  test("answers HEAD without a body", async () => {
    const res = await send(svc, get(METADATA_URL, "HEAD"));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("");
  });
});
