import { describe, expect, test } from "bun:test";
import { ALGS, build, decodeJwt, DEFAULT_KP, expectError, form, HOST, json, NOW, send, TOKEN_URL } from "./harness.ts";

const { svc } = build();
const GRANT = { grant_type: "client_credentials" };

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
  const ask = (clientId: string, secret: string, scope?: string) => send(svc, form(TOKEN_URL, { ...GRANT, client_id: clientId, client_secret: secret, ...(scope === undefined ? {} : { scope }) }));

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
