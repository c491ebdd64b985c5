import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { signJwt } from "../../../src/keys/jwt.ts";
import type { KeyPair } from "../../../src/keys/keyring.ts";
import { ALGS, build, context, decodeJwt, DEFAULT_KP, get, HOST, keyPair, NOW, tokenFor } from "./harness.ts";

const setup = build();
const { svc } = setup;
const defaultPair = setup.signingKeys.get(DEFAULT_KP)!;
const at = (now = NOW, host = "foo.oto.tools") => context(get(`http://${host}/api`), { now });
const iat = Math.floor(NOW / 1000);

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
const claims = (extra: Record<string, unknown> = {}) => ({
  iss: `http://${HOST}:8080`,
  sub: "my-id",
  aud: "otoroshi",
  client_id: "my-id",
  cid: "my-id",
  jti: "j",
  iat,
  nbf: iat,
  exp: iat + 3600,
  ...extra,
});
const reason = (token: string, now = NOW) => {
  const r = svc.verifyToken(token, at(now));
  return r.ok ? "ok" : r.reason;
};

describe("verifyToken", () => {
  for (const alg of ALGS) {
    test(`accepts a token the service issued with ${alg} and names its client and kid`, async () => {
      const token = await tokenFor(svc, `c-${alg.toLowerCase()}`, "s3cret");
      expect(svc.verifyToken(token, at())).toEqual({ ok: true, clientId: `c-${alg.toLowerCase()}`, kid: `k-${alg.toLowerCase()}` });
    });
  }

  test('refuses alg "none"', () => {
    expect(reason(`${b64({ alg: "none", typ: "at+jwt", kid: DEFAULT_KP })}.${b64(claims())}.`)).not.toBe("ok");
  });

  test("refuses HS256 signed with the public key as the HMAC secret (RFC 8725 §2.1)", () => {
    const pem = defaultPair.publicKey.export({ type: "spki", format: "pem" }) as string;
    const input = `${b64({ alg: "HS256", typ: "at+jwt", kid: DEFAULT_KP })}.${b64(claims())}`;
    const token = `${input}.${createHmac("sha256", pem).update(input).digest("base64url")}`;
    expect(reason(token)).toBe("alg_not_allowed");
  });

  test("refuses an unknown kid, and the kid of a key pair that is not a signing key", () => {
    const tls = keyPair("ES256", "tls-only");
    expect(reason(signJwt(tls, claims()))).toBe("unknown_kid");
  });

  test("refuses a token signed by another key under one of our kids", () => {
    const other: KeyPair = { ...keyPair("ES256", "other"), id: DEFAULT_KP };
    expect(reason(signJwt(other, claims()))).toBe("bad_signature");
  });

  test("refuses a tampered payload", async () => {
    const [h, , s] = (await tokenFor(svc, "my-id", "my-secret")).split(".");
    expect(reason(`${h}.${b64(claims({ sub: "admin", client_id: "admin", cid: "admin" }))}.${s}`)).toBe("bad_signature");
  });

  test("refuses an expired token beyond the 30 s leeway, accepts it within", () => {
    const token = signJwt(defaultPair, claims({ exp: iat - 10 }));
    expect(reason(token)).toBe("ok");
    expect(reason(signJwt(defaultPair, claims({ exp: iat - 31 })))).toBe("expired");
  });

  test("refuses a token that is not yet valid, and one without exp", () => {
    expect(reason(signJwt(defaultPair, claims({ nbf: iat + 120 })))).toBe("not_yet_valid");
    const { exp: _, ...noExp } = claims();
    expect(reason(signJwt(defaultPair, noExp))).toBe("missing_exp");
  });

  test("refuses a wrong audience, accepts an array that contains ours", () => {
    expect(reason(signJwt(defaultPair, claims({ aud: "someone-else" })))).toBe("bad_audience");
    expect(reason(signJwt(defaultPair, claims({ aud: ["x", "otoroshi"] })))).toBe("ok");
  });

  test("without an issuer setting, the iss host must match the domain regex", () => {
    for (const iss of [`https://${HOST}`, `http://OAUTH.oto.tools:9999`, `http://${HOST}/`]) expect(reason(signJwt(defaultPair, claims({ iss })))).toBe("ok");
    for (const iss of ["http://evil.example", `http://${HOST}.evil.example`, `http://${HOST}/path`, `ftp://${HOST}`, "not a url", 42, undefined]) {
      expect(reason(signJwt(defaultPair, claims({ iss })))).toBe("bad_issuer");
    }
  });

  test("with an issuer setting, iss must equal it exactly (RFC 9068 §4), as jose requires", () => {
    const { svc: s, signingKeys } = build({ config: { issuer: "https://auth.example.com" } });
    const kp = signingKeys.get(DEFAULT_KP)!;
    const r = (iss: unknown) => {
      const v = s.verifyToken(signJwt(kp, claims({ iss })), at());
      return v.ok ? "ok" : v.reason;
    };
    expect(r("https://auth.example.com")).toBe("ok");
    expect(r("https://auth.example.com/")).toBe("bad_issuer");
    expect(r(`http://${HOST}:8080`)).toBe("bad_issuer");
    expect(r("https://auth.example.com/other")).toBe("bad_issuer");
  });

  test('refuses a JWT whose typ is not "at+jwt" (RFC 8725 §3.11)', () => {
    expect(reason(signJwt(defaultPair, claims(), { typ: "JWT" }))).toBe("bad_typ");
    expect(reason(signJwt(defaultPair, claims(), { typ: undefined }))).toBe("bad_typ");
    expect(reason(signJwt(defaultPair, claims(), { typ: "application/at+jwt" }))).toBe("ok");
  });

  test("finds the client in client_id, then cid, then sub", () => {
    const id = (c: Record<string, unknown>) => {
      const v = svc.verifyToken(signJwt(defaultPair, c), at());
      return v.ok ? v.clientId : v.reason;
    };
    expect(id(claims({ client_id: "a", cid: "b", sub: "c" }))).toBe("a");
    expect(id(claims({ client_id: undefined, cid: "b", sub: "c" }))).toBe("b");
    expect(id(claims({ client_id: undefined, cid: undefined, sub: "c" }))).toBe("c");
    expect(id(claims({ client_id: undefined, cid: undefined, sub: undefined }))).toBe("malformed");
  });

  test("honours exp on every cache hit", async () => {
    const token = await tokenFor(svc, "my-id", "my-secret");
    const exp = decodeJwt(token).payload.exp as number;
    expect(svc.verifyToken(token, at()).ok).toBe(true);
    expect(svc.verifyToken(token, at()).ok).toBe(true);
    expect(svc.verifyToken(token, at(exp * 1000 + 29_000)).ok).toBe(true);
    expect(svc.verifyToken(token, at(exp * 1000 + 31_000))).toEqual({ ok: false, reason: "expired" });
  });

  test("does not carry its cache into the next snapshot", async () => {
    const token = await tokenFor(svc, "my-id", "my-secret");
    expect(svc.verifyToken(token, at()).ok).toBe(true);
    const next = build({ config: { audience: "another" } }).svc;
    expect(next.verifyToken(token, at())).toEqual({ ok: false, reason: "bad_audience" });
  });

  test("never throws on garbage", () => {
    for (const t of ["", ".", "..", "a.b.c", "eyJ.eyJ.x", "x".repeat(100_000), `${b64([])}.${b64({})}.`, `${b64({ alg: "ES256", kid: {} })}.${b64(claims())}.AA`]) {
      expect(svc.verifyToken(t, at()).ok).toBe(false);
    }
  });

  test("accepts tokens issued on one domain host at any other host", async () => {
    const token = await tokenFor(svc, "my-id", "my-secret");
    expect(svc.verifyToken(token, at(NOW, "elsewhere.example")).ok).toBe(true);
  });
});
