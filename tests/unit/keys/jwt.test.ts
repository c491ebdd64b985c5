import { describe, expect, test } from "bun:test";
import { createHmac, createPublicKey, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { createLocalJWKSet, importPKCS8, jwtVerify, SignJWT } from "jose";
import { signJwt, verifyJwt } from "../../../src/keys/jwt.ts";
import type { VerifyOptions } from "../../../src/keys/jwt.ts";
import { createKeyring, importKeyPair, jwks } from "../../../src/keys/keyring.ts";
import type { JwsAlg, KeyPair } from "../../../src/keys/keyring.ts";

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/keys/${name}`, import.meta.url), "utf8");
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

const KEY_TYPES: [string, string, JwsAlg][] = [
  ["RSA 2048", "rsa2048.key.pem", "RS256"],
  ["EC P-256", "ec-p256.key.pem", "ES256"],
  ["EC P-384", "ec-p384.key.pem", "ES384"],
  ["EC P-521", "ec-p521.key.pem", "ES512"],
  ["Ed25519", "ed25519.key.pem", "EdDSA"],
];
const PAIRS = KEY_TYPES.map(([, file, alg]) => importKeyPair(`kid-${alg}`, fixture(file)));
const ring = createKeyring(PAIRS);
const byAlg = (alg: JwsAlg) => PAIRS.find((p) => p.alg === alg)!;

const NOW = 1_800_000_000;
const ISSUER = "https://oauth.oto.tools";
const AUDIENCE = "foo";
const opts: VerifyOptions = {
  now: NOW,
  leewaySec: 30,
  audience: AUDIENCE,
  issuer: (iss) => iss === ISSUER,
  resolveKey: (kid) => ring.get(kid),
  allowedTyp: ["at+jwt", "JWT"],
};
const claims = (extra: Record<string, unknown> = {}) => ({ iss: ISSUER, aud: AUDIENCE, sub: "my-id", iat: NOW, exp: NOW + 3600, ...extra });
const reason = (token: string, o: Partial<VerifyOptions> = {}) => {
  const result = verifyJwt(token, { ...opts, ...o });
  return result.ok ? "ok" : result.reason;
};

/** A token with any header, signed over its input by `kp` the way jwt.ts would. */
function forge(kp: KeyPair, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const hash = kp.alg === "EdDSA" ? null : `sha${kp.alg.slice(2)}`;
  return `${input}.${sign(hash, Buffer.from(input), { key: kp.privateKey, dsaEncoding: "ieee-p1363" }).toString("base64url")}`;
}

describe("signJwt + verifyJwt", () => {
  for (const [name, , alg] of KEY_TYPES) {
    test(`signs and verifies a token with an ${name} key, header alg ${alg}`, () => {
      const kp = byAlg(alg);
      const result = verifyJwt(signJwt(kp, claims({ scope: "read" })), opts);
      expect(result).toEqual({ ok: true, header: { alg, typ: "at+jwt", kid: kp.id }, payload: claims({ scope: "read" }) });
    });

    test(`a token signed with an ${name} key verifies with jose and the JWKS (interop)`, async () => {
      const kp = byAlg(alg);
      const { payload, protectedHeader } = await jwtVerify(signJwt(kp, claims()), createLocalJWKSet(jwks(PAIRS) as never), {
        issuer: ISSUER,
        audience: AUDIENCE,
        typ: "at+jwt",
        currentDate: new Date(NOW * 1000),
      });
      expect(protectedHeader).toEqual({ alg, typ: "at+jwt", kid: kp.id });
      expect(payload.sub).toBe("my-id");
    });

    test(`verifies a token that jose signed with the same ${name} key`, async () => {
      const kp = byAlg(alg);
      const key = await importPKCS8(fixture(KEY_TYPES.find((t) => t[2] === alg)![1]), alg);
      const token = await new SignJWT(claims()).setProtectedHeader({ alg, typ: "JWT", kid: kp.id }).sign(key);
      expect(reason(token)).toBe("ok");
    });
  }

  test("lets the caller set typ and extra header members, but never alg or kid", () => {
    const kp = byAlg("ES256");
    const token = signJwt(kp, claims(), { typ: "JWT", alg: "none", kid: "other", x5t: "abc" });
    const result = verifyJwt(token, opts);
    expect(result.ok && result.header).toEqual({ alg: "ES256", typ: "JWT", kid: kp.id, x5t: "abc" });
    expect(reason(signJwt(kp, claims(), { typ: undefined }), { allowedTyp: [""] })).toBe("ok");
  });
});

describe("verifyJwt refuses", () => {
  const rsa = byAlg("RS256");
  const ec = byAlg("ES256");

  test("alg none, with or without a kid (RFC 8725 §3.1)", () => {
    const payload = b64(claims());
    expect(reason(`eyJhbGciOiJub25lIn0.${payload}.`)).toBe("alg_not_allowed");
    expect(reason(`${b64({ alg: "none", kid: rsa.id })}.${payload}.`)).toBe("alg_not_allowed");
  });

  test("HS256 signed with the RSA public key PEM as the HMAC secret", () => {
    const secret = createPublicKey(rsa.privateKey).export({ type: "spki", format: "pem" });
    const input = `${b64({ alg: "HS256", typ: "JWT", kid: rsa.id })}.${b64(claims())}`;
    const token = `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
    expect(reason(token)).toBe("alg_not_allowed");
  });

  test("an RS256 header pointing at an EC kid", () => {
    expect(reason(forge(rsa, { alg: "RS256", kid: ec.id }, claims()))).toBe("alg_not_allowed");
  });

  test("an unknown or missing kid", () => {
    expect(reason(forge(ec, { alg: "ES256", kid: "nope" }, claims()))).toBe("unknown_kid");
    expect(reason(forge(ec, { alg: "ES256" }, claims()))).toBe("unknown_kid");
  });

  test("a token signed by another key under a known kid", () => {
    const other = importKeyPair(ec.id, fixture("ec-p256-other.key.pem"));
    expect(reason(signJwt(other, claims()))).toBe("bad_signature");
  });

  test("a tampered payload", () => {
    const [h, , s] = signJwt(rsa, claims()).split(".");
    expect(reason(`${h}.${b64(claims({ sub: "admin" }))}.${s}`)).toBe("bad_signature");
  });

  test("an ECDSA signature of the wrong length or in DER form", () => {
    const token = signJwt(ec, claims());
    const [h, p, s] = token.split(".");
    const sig = Buffer.from(s!, "base64url");
    expect(reason(`${h}.${p}.${sig.subarray(0, 63).toString("base64url")}`)).toBe("bad_signature");
    const der = sign("sha256", Buffer.from(`${h}.${p}`), { key: ec.privateKey, dsaEncoding: "der" });
    expect(reason(`${h}.${p}.${der.toString("base64url")}`)).toBe("bad_signature");
    expect(reason(`${h}.${p}.`)).toBe("bad_signature");
  });

  test("a signature segment in a non-canonical base64url spelling", () => {
    const token = signJwt(byAlg("EdDSA"), claims());
    // 64 bytes encode to 86 chars whose last one carries 4 unused bits; flipping one keeps the bytes.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const twin = token.slice(0, -1) + alphabet[alphabet.indexOf(token.at(-1)!) ^ 1];
    expect(Buffer.from(twin.split(".")[2]!, "base64url")).toEqual(Buffer.from(token.split(".")[2]!, "base64url"));
    expect(reason(twin)).toBe("bad_signature");
  });

  test("expired, not yet valid and iat-in-the-future tokens, with the leeway applied", () => {
    expect(reason(signJwt(ec, claims({ exp: NOW - 30 })))).toBe("expired");
    expect(reason(signJwt(ec, claims({ exp: NOW - 29 })))).toBe("ok");
    expect(reason(signJwt(ec, claims({ nbf: NOW + 31 })))).toBe("not_yet_valid");
    expect(reason(signJwt(ec, claims({ nbf: NOW + 30 })))).toBe("ok");
    expect(reason(signJwt(ec, claims({ iat: NOW + 31 })))).toBe("iat_in_future");
  });

  test("a token without exp, or with a non-numeric date", () => {
    const { exp: _, ...noExp } = claims();
    expect(reason(signJwt(ec, noExp))).toBe("missing_exp");
    expect(reason(signJwt(ec, claims({ exp: String(NOW + 60) })))).toBe("malformed");
    expect(reason(signJwt(ec, claims({ nbf: null })))).toBe("malformed");
  });

  test("the wrong audience or issuer; aud may be an array", () => {
    expect(reason(signJwt(ec, claims({ aud: "bar" })))).toBe("bad_audience");
    expect(reason(signJwt(ec, claims({ aud: undefined })))).toBe("bad_audience");
    expect(reason(signJwt(ec, claims({ aud: ["bar", AUDIENCE] })))).toBe("ok");
    expect(reason(signJwt(ec, claims({ iss: "https://evil.test" })))).toBe("bad_issuer");
  });

  test("a typ outside allowedTyp, compared case-insensitively with an optional application/ prefix", () => {
    expect(reason(signJwt(ec, claims(), { typ: "application/AT+JWT" }))).toBe("ok");
    expect(reason(signJwt(ec, claims(), { typ: "id_token+jwt" }))).toBe("bad_typ");
    expect(reason(signJwt(ec, claims(), { typ: undefined }))).toBe("bad_typ");
    expect(reason(signJwt(ec, claims(), { typ: "anything" }), { allowedTyp: undefined })).toBe("ok");
  });

  test("a crit header (RFC 7515 §4.1.11)", () => {
    expect(reason(forge(ec, { alg: "ES256", kid: ec.id, crit: ["b64"], b64: false }, claims()))).toBe("malformed");
  });

  test("checks the signature before the claims", () => {
    const [h, , s] = signJwt(ec, claims()).split(".");
    expect(reason(`${h}.${b64(claims({ exp: NOW - 3600 }))}.${s}`)).toBe("bad_signature");
  });

  test("malformed shapes, oversized tokens and non-object JSON", () => {
    const good = signJwt(ec, claims());
    const [h, p, s] = good.split(".");
    for (
      const token of [
        "",
        "a.b",
        `${good}.x`,
        `.${p}.${s}`,
        `${h}..${s}`,
        `${h}.${p}.${s}=`,
        `${h}+.${p}.${s}`,
        `${b64([1])}.${p}.${s}`,
        `${h}.${b64("str")}.${s}`,
        `${Buffer.from("{not json").toString("base64url")}.${p}.${s}`,
        `${Buffer.from([0xff, 0xfe]).toString("base64url")}.${p}.${s}`,
        `${h}.${b64(claims({ pad: "x".repeat(16 * 1024) }))}.${s}`,
      ]
    ) {
      expect(reason(token)).toBe("malformed");
    }
    expect(reason(123 as unknown as string)).toBe("malformed");
  });

  test("a throwing resolveKey or issuer callback becomes a refusal", () => {
    const boom = () => {
      throw new Error("boom");
    };
    expect(reason(signJwt(ec, claims()), { resolveKey: boom })).toBe("malformed");
    expect(reason(signJwt(ec, claims()), { issuer: boom })).toBe("malformed");
  });

  test("any one-character change to a valid token is refused", () => {
    const tokens = PAIRS.map((kp) => signJwt(kp, claims()));
    const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    fc.assert(
      fc.property(fc.constantFrom(...tokens), fc.nat(), fc.constantFrom(...chars), (token, at, ch) => {
        const i = at % token.length;
        fc.pre(token[i] !== ch);
        expect(verifyJwt(token.slice(0, i) + ch + token.slice(i + 1), opts).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  test("never throws on random strings or random three-part tokens", () => {
    const segment = fc.oneof(fc.string(), fc.base64String().map((s) => s.replace(/=+$/, "")), fc.constant(b64({ alg: "ES256", kid: ec.id })));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.tuple(segment, segment, segment).map((parts) => parts.join("."))), (token) => {
        const result = verifyJwt(token, opts);
        expect(result.ok).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });
});
