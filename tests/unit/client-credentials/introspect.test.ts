import { describe, expect, test } from "bun:test";
import { signJwt } from "../../../src/keys/jwt.ts";
import { BASE, basic, build, call, CLIENTS, decodeJwt, DEFAULT_KP, form, get, HOST, INTROSPECT_URL, json, keyPair, NOW, send, tokenFor } from "./harness.ts";

const { svc } = build();

describe("introspection (RFC 7662)", () => {
  const auth = { client_id: "noscope", client_secret: "noscope-secret" };
  const introspect = (token: string, s = svc, extra: Record<string, string> = {}) => send(s, form(INTROSPECT_URL, { token, ...auth, ...extra }));
  const answer = async (res: Response) => {
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("content-type")).toBe("application/json");
    return (await res.json()) as Record<string, unknown>;
  };

  test("describes an active token with the RFC 7662 §2.2 members", async () => {
    const token = await tokenFor(svc, "my-id", "my-secret", { scope: "read" });
    const { payload } = decodeJwt(token);
    expect(await answer(await introspect(token))).toEqual({
      active: true,
      client_id: "my-id",
      scope: "read",
      sub: "my-id",
      aud: "otoroshi",
      iss: BASE,
      exp: payload.exp,
      iat: payload.iat,
      nbf: payload.nbf,
      jti: payload.jti,
      token_type: "Bearer",
    });
  });

  test("accepts Basic client authentication and a JSON body, and ignores token_type_hint", async () => {
    const token = await tokenFor(svc, "c-rs256", "s3cret");
    const res = await send(svc, json(INTROSPECT_URL, { token, token_type_hint: "refresh_token" }, { authorization: basic("my-id", "my-secret") }));
    expect((await answer(res)).active).toBe(true);
  });

  test("answers active: false for an expired token", async () => {
    const token = await tokenFor(svc, "my-id", "my-secret");
    const res = await send(svc, form(INTROSPECT_URL, { token, ...auth }), { now: NOW + 3600_000 + 31_000 });
    expect(await answer(res)).toEqual({ active: false });
  });

  test("answers active: false for a token signed by a foreign key, even with our kid", async () => {
    const foreign = keyPair("ES256", "foreign");
    const claims = decodeJwt(await tokenFor(svc, "my-id", "my-secret")).payload;
    expect(await answer(await introspect(signJwt(foreign, claims)))).toEqual({ active: false });
    const impostor = keyPair("ES256", DEFAULT_KP.toUpperCase());
    const forged = signJwt({ ...impostor, id: DEFAULT_KP }, claims);
    expect(decodeJwt(forged).header.kid).toBe(DEFAULT_KP);
    expect(await answer(await introspect(forged))).toEqual({ active: false });
  });

  test("answers active: false for a tampered payload and for garbage", async () => {
    const token = await tokenFor(svc, "my-id", "my-secret");
    const [h, p, s] = token.split(".");
    const payload = JSON.parse(Buffer.from(p!, "base64url").toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, scope: "admin" })).toString("base64url")}.${s}`;
    for (const t of [tampered, "garbage", "a.b.c", "x".repeat(20_000)]) expect(await answer(await introspect(t))).toEqual({ active: false });
  });

  test("answers active: false once the key is disabled or removed (next snapshot)", async () => {
    const token = await tokenFor(svc, "my-id", "my-secret");
    const disabled = build({ clients: CLIENTS.map((c) => (c.clientId === "my-id" ? { ...c, enabled: false } : c)) }).svc;
    expect(await answer(await introspect(token, disabled))).toEqual({ active: false });
    const removed = build({ clients: CLIENTS.filter((c) => c.clientId !== "my-id") }).svc;
    expect(await answer(await introspect(token, removed))).toEqual({ active: false });
  });

  test("answers active: false for a key bound to its own key pair when another pair signed the token", async () => {
    const claims = decodeJwt(await tokenFor(svc, "c-rs256", "s3cret")).payload;
    const wrongPair = signJwt(build().signingKeys.get(DEFAULT_KP)!, claims);
    expect(await answer(await introspect(wrongPair))).toEqual({ active: false });
  });

  test("requires client authentication", async () => {
    const token = await tokenFor(svc, "my-id", "my-secret");
    const none = await send(svc, form(INTROSPECT_URL, { token }));
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Basic realm="otoroshi"');
    expect(((await none.json()) as { error: string }).error).toBe("invalid_client");
    const wrong = await send(svc, form(INTROSPECT_URL, { token, client_id: "my-id", client_secret: "nope" }));
    expect(wrong.status).toBe(401);
  });

  test("refuses a missing token with 400 invalid_request", async () => {
    const res = await send(svc, form(INTROSPECT_URL, auth));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: "invalid_request", error_description: "missing token" });
  });

  test("lets other hosts fall through to the routes", async () => {
    expect(await call(svc, get(`http://api.${HOST}/.well-known/otoroshi/oauth/jwks.json`))).toBeNull();
  });
});
