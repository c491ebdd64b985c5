// The differential corpus for the gateway's own JWT code (src/keys/jwt.ts) against jose: tokens
// the gateway must accept, attack tokens both must refuse, and the few where the gateway is
// deliberately stricter than jose. Runtime-neutral: jwt-differential.test.ts runs it on Bun,
// through the request path; jwt-differential-deno.ts runs it on Deno, whose node:crypto is
// another implementation.

import { constants, createHmac, generateKeyPairSync, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { createLocalJWKSet, jwtVerify } from "jose";
import { ClientCredentialConfig } from "../../../src/config/schema.ts";
import type { JwsAlg, KeyPair } from "../../../src/keys/keyring.ts";
import { createKeyring, importKeyPair, jwks } from "../../../src/keys/keyring.ts";
import { compileDomain } from "../../../src/plugins/client-credentials/issuer.ts";
import { createVerifier, LEEWAY_SEC } from "../../../src/plugins/client-credentials/verify.ts";

export const NOW = 1_800_000_000;
export const ISSUER = "https://issuer.test";
export const AUDIENCE = "otoroshi";
export const ALGS: JwsAlg[] = ["RS256", "ES256", "ES384", "ES512", "EdDSA"];
const FILES: Record<JwsAlg, string> = { RS256: "rsa2048.key.pem", ES256: "ec-p256.key.pem", ES384: "ec-p384.key.pem", ES512: "ec-p521.key.pem", EdDSA: "ed25519.key.pem" };

export const fixture = (name: string) => readFileSync(new URL(`../../fixtures/keys/${name}`, import.meta.url), "utf8");
/** The signing key pair of each algorithm, as the gateway's config declares it (`k-<alg>`). */
export const kidOf = (alg: JwsAlg) => `k-${alg.toLowerCase()}`;
export const clientOf = (alg: JwsAlg) => `c-${alg.toLowerCase()}`;
export const PEMS: Record<string, string> = { ...Object.fromEntries(ALGS.map((a) => [kidOf(a), fixture(FILES[a])])), "k-spare": fixture("ec-p256-other.key.pem") };

export interface Keys {
  ours: Record<JwsAlg, KeyPair>;
  /** Declared in the config but signing nothing: not in the JWKS, not accepted. */
  spare: KeyPair;
  /** The attacker's own key, declared nowhere. */
  attacker: KeyPair;
}

export function loadKeys(): Keys {
  const ours = Object.fromEntries(ALGS.map((a) => [a, importKeyPair(kidOf(a), PEMS[kidOf(a)])])) as Record<JwsAlg, KeyPair>;
  const pem = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  return { ours, spare: importKeyPair("k-spare", PEMS["k-spare"]), attacker: importKeyPair("attacker", pem) };
}

/** "both accept", "both refuse", or the gateway refuses what jose lets through (why). */
export type Expect = { both: "accept" | "refuse" } | { gatewayStricter: string };

export interface Case {
  name: string;
  token: string;
  /** Epoch seconds the token is checked at. */
  now: number;
  expect: Expect;
}

const b64u = (b: Buffer | string) => Buffer.from(b).toString("base64url");
const seg = (v: unknown) => b64u(JSON.stringify(v));
const HASH: Record<string, string | null> = { RS256: "sha256", ES256: "sha256", ES384: "sha384", ES512: "sha512", EdDSA: null };
let serial = 0;

/** Claims of an access token the gateway would issue to the client bound to `alg`'s key pair. */
export function claims(alg: JwsAlg, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const client = clientOf(alg);
  return { iss: ISSUER, sub: client, aud: AUDIENCE, client_id: client, cid: client, jti: `jti-${++serial}`, iat: NOW, nbf: NOW, exp: NOW + 3600, ...extra };
}

/** A compact JWS over exactly these segments, signed by kp (hash and encoding overridable). */
export function signSegments(kp: KeyPair, h: string, p: string, o: { hash?: string | null; der?: boolean } = {}): string {
  const input = `${h}.${p}`;
  const hash = o.hash !== undefined ? o.hash : HASH[kp.alg];
  return `${input}.${b64u(sign(hash, Buffer.from(input), { key: kp.privateKey, dsaEncoding: o.der ? "der" : "ieee-p1363" }))}`;
}

export const header = (kp: KeyPair, extra: Record<string, unknown> = {}) => ({ alg: kp.alg, typ: "at+jwt", kid: kp.id, ...extra });
export const token = (kp: KeyPair, payload: Record<string, unknown>, h: Record<string, unknown> = header(kp)) => signSegments(kp, seg(h), seg(payload));

const parts = (t: string) => t.split(".") as [string, string, string];
const withSig = (t: string, sig: Buffer | string) => `${parts(t)[0]}.${parts(t)[1]}.${typeof sig === "string" ? sig : b64u(sig)}`;
const sigOf = (t: string) => Buffer.from(parts(t)[2], "base64url");

// Group orders (SEC 2 / FIPS 186-4) and the Ed25519 subgroup order L (RFC 8032 §5.1).
const ORDER: Partial<Record<JwsAlg, bigint>> = {
  ES256: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  ES384: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
};
const ED25519_L = (1n << 252n) + 27742317777372353535851937790883648493n;
const beBytes = (n: bigint, size: number) => Buffer.from(n.toString(16).padStart(size * 2, "0"), "hex");

/** A token whose signature segment contains a `-` or `_`, so its base64 spelling differs. */
function tokenWithUrlChars(kp: KeyPair): string {
  for (;;) {
    const t = token(kp, claims(kp.alg));
    if (/[-_]/.test(parts(t)[2])) return t;
  }
}

/** The named corpus. `fetchUrl` counts requests: jku and x5u point at it. */
export function buildCorpus(keys: Keys, fetchUrl: string): Case[] {
  const cases: Case[] = [];
  const add = (name: string, t: string, expect: Expect, now = NOW) => cases.push({ name, token: t, now, expect });
  const accept: Expect = { both: "accept" };
  const refuse: Expect = { both: "refuse" };
  const { ours, spare, attacker } = keys;

  for (const alg of ALGS) {
    const kp = ours[alg];
    const good = token(kp, claims(alg));
    add(`${alg}: signed with the gateway's key`, good, accept);
    add(`${alg}: typ application/AT+JWT (RFC 7515 §4.1.9 spelling)`, token(kp, claims(alg), header(kp, { typ: "application/AT+JWT" })), accept);
    add(`${alg}: truncated signature (one byte less)`, withSig(good, sigOf(good).subarray(0, -1)), refuse);
    add(`${alg}: truncated signature (last two characters)`, good.slice(0, -2), refuse);
    add(`${alg}: empty signature`, withSig(good, ""), refuse);
    add(`${alg}: payload of another token (payload swap)`, `${parts(good)[0]}.${parts(token(kp, claims(alg, { sub: "admin", client_id: "admin" })))[1]}.${parts(good)[2]}`, refuse);
    add(`${alg}: unknown kid`, token(kp, claims(alg), header(kp, { kid: "nope" })), refuse);
    add(`${alg}: no kid (the gateway never guesses a key)`, token(kp, claims(alg), { alg, typ: "at+jwt" }), {
      gatewayStricter: "a token names its key: the gateway does not try the JWKS key of the same algorithm (RFC 8725 §3.10)",
    });
    const other = ours[alg === "ES256" ? "ES384" : "ES256"];
    add(`${alg}: kid of another of the gateway's keys`, token(kp, claims(alg), header(kp, { kid: other.id })), refuse);
    add(`${alg}: alg and kid of another key, signed with this one`, token(kp, claims(alg), header(other)), refuse);
    // The header's alg lies but the signature is valid for the key's own algorithm (RFC 8725 §3.1).
    add(`${alg}: alg ${other.alg} on this key's kid, signed as ${alg}`, token(kp, claims(alg), header(kp, { alg: other.alg })), refuse);
    add(`${alg}: declared key pair that signs nothing`, token(spare, claims(alg), header(spare)), refuse);
    add(`${alg}: kid of this key, signed by the attacker`, token(attacker, claims(alg), header(kp, { alg: "ES256" })), refuse);
    add(`${alg}: alg spelled ${alg.toLowerCase()}`, token(kp, claims(alg), header(kp, { alg: alg.toLowerCase() })), refuse);
    for (const none of ["none", "None", "NONE"]) {
      add(`${alg}: alg ${none}, empty signature`, `${seg(header(kp, { alg: none }))}.${seg(claims(alg))}.`, refuse);
      add(`${alg}: alg ${none}, signature kept`, `${seg(header(kp, { alg: none }))}.${seg(claims(alg))}.${parts(good)[2]}`, refuse);
    }
    const spki = kp.publicKey.export({ type: "spki", format: "pem" }) as string;
    const der = kp.publicKey.export({ type: "spki", format: "der" }) as Buffer;
    for (const [form, secret] of [["PEM", spki], ["DER", der], ["JWK", JSON.stringify(kp.publicJwk)]] as const) {
      for (const hs of ["HS256", "HS384", "HS512"]) {
        const input = `${seg(header(kp, { alg: hs }))}.${seg(claims(alg))}`;
        add(`${alg}: ${hs} with the public key (${form}) as the secret`, `${input}.${createHmac(`sha${hs.slice(2)}`, secret).update(input).digest("base64url")}`, refuse);
      }
    }
    add(`${alg}: crit with an unknown extension`, token(kp, claims(alg), header(kp, { crit: ["x-unknown"], "x-unknown": true })), refuse);
    add(`${alg}: crit b64 true`, token(kp, claims(alg), header(kp, { crit: ["b64"], b64: true })), {
      gatewayStricter: "the gateway understands no extension, so any crit is refused (RFC 7515 §4.1.11)",
    });
    add(`${alg}: jku and x5u to the attacker, signed by the attacker`, token(attacker, claims(alg), header(attacker, { kid: "attacker", jku: fetchUrl, x5u: fetchUrl })), refuse);
    add(`${alg}: jwk header with the attacker's key`, token(attacker, claims(alg), header(attacker, { kid: "attacker", jwk: attacker.publicJwk })), refuse);
    add(`${alg}: jwk header with the attacker's key under this kid`, token(attacker, claims(alg), header(kp, { alg: "ES256", jwk: attacker.publicJwk })), refuse);
    add(`${alg}: x5c header, signed by the attacker`, token(attacker, claims(alg), header(attacker, { kid: "attacker", x5c: [fixtureDerB64("localhost.cert.pem")] })), refuse);
    add(`${alg}: jku and x5u on a token the gateway signed (never fetched)`, token(kp, claims(alg), header(kp, { jku: fetchUrl, x5u: fetchUrl })), accept);
    add(
      `${alg}: signature in base64, not base64url`,
      (() => {
        const t = tokenWithUrlChars(kp);
        return withSig(t, parts(t)[2].replace(/-/g, "+").replace(/_/g, "/"));
      })(),
      refuse,
    );
    add(`${alg}: signature with base64 padding`, good + "=".repeat((4 - (parts(good)[2].length % 4)) % 4 || 4), { gatewayStricter: "one spelling per signature: no padding (RFC 7515 §2, §3.1)" });
    add(`${alg}: signature with a space inside`, good.slice(0, -4) + " " + good.slice(-4), { gatewayStricter: "one spelling per signature: no whitespace (RFC 7515 §2)" });
    add(`${alg}: extra dot at the end`, `${good}.`, refuse);
    add(`${alg}: extra segment`, `${good}.${parts(good)[2]}`, refuse);
    add(`${alg}: empty header segment`, `.${parts(good)[1]}.${parts(good)[2]}`, refuse);
    add(`${alg}: empty payload segment`, `${parts(good)[0]}..${parts(good)[2]}`, refuse);
    add(`${alg}: two segments`, `${parts(good)[0]}.${parts(good)[1]}`, refuse);
    add(`${alg}: a 20 KB claim, validly signed`, token(kp, claims(alg, { pad: "x".repeat(20_000) })), {
      gatewayStricter: "tokens over 16 KiB are refused before any decoding (a bound on work per request)",
    });
    add(`${alg}: 1 MB of base64url`, `${"A".repeat(400_000)}.${"B".repeat(400_000)}.${"C".repeat(300_000)}`, refuse);
    // RFC 7519 §4.1.4/§4.1.5 with the gateway's leeway (LEEWAY_SEC, src/plugins/client-credentials/verify.ts).
    const exp = NOW + 600;
    add(`${alg}: checked exactly at exp`, token(kp, claims(alg, { exp })), accept, exp);
    add(`${alg}: checked leeway - 1 s after exp`, token(kp, claims(alg, { exp })), accept, exp + LEEWAY_SEC - 1);
    add(`${alg}: checked exactly leeway after exp`, token(kp, claims(alg, { exp })), refuse, exp + LEEWAY_SEC);
    add(`${alg}: checked leeway before nbf`, token(kp, claims(alg, { nbf: NOW + 600 })), accept, NOW + 600 - LEEWAY_SEC);
    add(`${alg}: checked leeway + 1 s before nbf`, token(kp, claims(alg, { nbf: NOW + 600 })), refuse, NOW + 600 - LEEWAY_SEC - 1);
    add(`${alg}: fractional exp just inside the leeway`, token(kp, claims(alg, { exp: NOW - LEEWAY_SEC + 0.5 })), accept);
    add(`${alg}: no exp`, token(kp, claims(alg, { exp: undefined })), refuse);
    add(`${alg}: exp 1e400 (not a finite NumericDate)`, signSegments(kp, seg(header(kp)), b64u(JSON.stringify(claims(alg, { exp: 0 })).replace('"exp":0', '"exp":1e400'))), {
      gatewayStricter: "a NumericDate must be a finite number (RFC 7519 §2); 1e400 parses as Infinity",
    });
    add(`${alg}: iat beyond the leeway in the future`, token(kp, claims(alg, { iat: NOW + LEEWAY_SEC + 1 })), {
      gatewayStricter: "a token issued in the future is refused (jose checks iat only with maxTokenAge)",
    });
    add(`${alg}: wrong audience`, token(kp, claims(alg, { aud: "other" })), refuse);
    add(`${alg}: audience in an array`, token(kp, claims(alg, { aud: ["other", AUDIENCE] })), accept);
    add(`${alg}: no audience`, token(kp, claims(alg, { aud: undefined })), refuse);
    add(`${alg}: wrong issuer`, token(kp, claims(alg, { iss: "https://evil.test" })), refuse);
    add(`${alg}: issuer with a trailing slash added`, token(kp, claims(alg, { iss: ISSUER + "/" })), refuse);
    add(`${alg}: typ JWT`, token(kp, claims(alg), header(kp, { typ: "JWT" })), refuse);
    add(`${alg}: no typ`, token(kp, claims(alg), header(kp, { typ: undefined })), refuse);
    add(
      `${alg}: payload not valid UTF-8`,
      signSegments(kp, seg(header(kp)), b64u(Buffer.concat([Buffer.from(JSON.stringify(claims(alg)).slice(0, -1) + ',"x":"'), Buffer.from([0xff]), Buffer.from('"}')]))),
      refuse,
    );
    add(`${alg}: payload a JSON array`, signSegments(kp, seg(header(kp)), seg([claims(alg)])), refuse);
    // RFC 7515 §5.2: the lexically last member wins, in both.
    add(`${alg}: duplicate alg, the key's last`, signSegments(kp, b64u(JSON.stringify(header(kp)).replace("{", '{"alg":"none",')), seg(claims(alg))), accept);
    add(`${alg}: duplicate alg, none last`, signSegments(kp, b64u(JSON.stringify(header(kp)).replace("{", '{"alg":"ES256",').replace(/}$/, ',"alg":"none"}')), seg(claims(alg))), refuse);
  }

  const es256 = ours.ES256;
  const good = token(es256, claims("ES256"));
  const [r, s] = [sigOf(good).subarray(0, 32), sigOf(good).subarray(32)];
  const n256 = beBytes(ORDER.ES256!, 32);
  add("ES256: r = s = 0", withSig(good, Buffer.alloc(64)), refuse);
  add("ES256: r = n", withSig(good, Buffer.concat([n256, s])), refuse);
  add("ES256: s = n", withSig(good, Buffer.concat([r, n256])), refuse);
  add("ES256: r = 0", withSig(good, Buffer.concat([Buffer.alloc(32), s])), refuse);
  add("ES256: high-S twin of a valid signature (ECDSA malleability)", withSig(good, Buffer.concat([r, beBytes(ORDER.ES256! - BigInt("0x" + s.toString("hex")), 32)])), accept);
  const es384 = ours.ES384;
  const good384 = token(es384, claims("ES384"));
  add("ES384: r = s = 0", withSig(good384, Buffer.alloc(96)), refuse);
  add("ES384: s = n", withSig(good384, Buffer.concat([sigOf(good384).subarray(0, 48), beBytes(ORDER.ES384!, 48)])), refuse);
  for (const alg of ["ES256", "ES384", "ES512"] as const) {
    const kp = ours[alg];
    add(`${alg}: DER-encoded signature instead of raw r || s`, signSegments(kp, seg(header(kp)), seg(claims(alg)), { der: true }), refuse);
  }
  // The wrong curve for the algorithm: a P-384 key's signature over SHA-256 under ES256, by kid either way.
  add("ES256 header on the P-384 key (its kid), SHA-256", signSegments(es384, seg(header(es384, { alg: "ES256" })), seg(claims("ES384")), { hash: "sha256" }), refuse);
  add("ES384 header on the P-256 key (its kid), SHA-384", signSegments(es256, seg(header(es256, { alg: "ES384" })), seg(claims("ES256")), { hash: "sha384" }), refuse);
  add("ES256 header and P-256 kid, signed by the P-384 key", signSegments(es384, seg(header(es256)), seg(claims("ES256")), { hash: "sha256" }), refuse);
  const ed = ours.EdDSA;
  const goodEd = token(ed, claims("EdDSA"));
  const edS = BigInt("0x" + Buffer.from(sigOf(goodEd).subarray(32)).reverse().toString("hex")) + ED25519_L;
  if (edS < 1n << 256n) add("EdDSA: S + L (non-canonical S, RFC 8032 §5.1.7)", withSig(goodEd, Buffer.concat([sigOf(goodEd).subarray(0, 32), beBytes(edS, 32).reverse()])), refuse);
  add("EdDSA: alg Ed25519 (not the name the gateway publishes)", token(ed, claims("EdDSA"), header(ed, { alg: "Ed25519" })), refuse);
  const rsa = ours.RS256;
  add("RS256: PSS signature under RS256", signSegmentsPss(rsa, seg(header(rsa)), seg(claims("RS256"))), refuse);
  add("RS256: PS256 header, PSS signature", signSegmentsPss(rsa, seg(header(rsa, { alg: "PS256" })), seg(claims("RS256"))), refuse);
  const rsaZero = rsaSignatureWithLeadingZero(rsa);
  add("RS256: signature without its leading zero octet", withSig(rsaZero, sigOf(rsaZero).subarray(1)), refuse);
  const goodRsa = token(rsa, claims("RS256"));
  add("RS256: signature with an extra leading zero octet", withSig(goodRsa, Buffer.concat([Buffer.alloc(1), sigOf(goodRsa)])), refuse);
  add("non-canonical base64url: unused bits of the last character set", nonCanonical(goodEd), { gatewayStricter: "one spelling per signature: the unused bits must be zero (RFC 4648 §3.5)" });
  return cases;
}

function fixtureDerB64(name: string): string {
  return fixture(name).replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
}

function signSegmentsPss(kp: KeyPair, h: string, p: string): string {
  const input = `${h}.${p}`;
  return `${input}.${b64u(sign("sha256", Buffer.from(input), { key: kp.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }))}`;
}

function rsaSignatureWithLeadingZero(kp: KeyPair): string {
  // PKCS#1 v1.5 is deterministic: about 1 signature in 256 starts with 0x00.
  for (let i = 0; i < 10_000; i++) {
    const t = token(kp, claims("RS256"));
    if (sigOf(t)[0] === 0) return t;
  }
  throw new Error("no RSA signature with a leading zero octet in 10,000 tries");
}

function nonCanonical(t: string): string {
  // 64 signature bytes are 86 characters; the last one carries 4 unused bits.
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return t.slice(0, -1) + alphabet[alphabet.indexOf(t.at(-1)!) ^ 1];
}

/** The gateway's verdict through its verifier's entry point (what routes and introspection call). */
export function gatewayVerifier(keys: Keys): (t: string, now: number) => string {
  const config = ClientCredentialConfig.parse({ domain: "issuer\\.test", issuer: ISSUER, defaultKeyPair: kidOf("ES256") });
  const verifier = createVerifier(config, createKeyring(Object.values(keys.ours)), compileDomain(config.domain));
  return (t, now) => {
    const r = verifier.verify(t, now * 1000);
    return r.ok ? "accept" : r.reason;
  };
}

/** jose as a careful verifier: algorithms pinned, issuer, audience, typ, exp required, same leeway. */
export function joseVerifier(jwksDoc: { keys: Record<string, unknown>[] }): (t: string, now: number) => Promise<string> {
  const set = createLocalJWKSet(jwksDoc as never);
  return (t, now) =>
    jwtVerify(t, set, {
      algorithms: ALGS,
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: "at+jwt",
      requiredClaims: ["exp"],
      clockTolerance: LEEWAY_SEC,
      currentDate: new Date(now * 1000),
    }).then(
      () => "accept",
      (e: { code?: string }) => e.code ?? "error",
    );
}

export const publishedJwks = (keys: Keys) => jwks(ALGS.map((a) => keys.ours[a]));

/** Cases whose verdicts do not match their expectation, with both verdicts. */
export async function mismatches(cases: Case[], gateway: (t: string, now: number) => string, jose: (t: string, now: number) => Promise<string>): Promise<string[]> {
  const out: string[] = [];
  for (const c of cases) {
    const g = gateway(c.token, c.now);
    const j = await jose(c.token, c.now);
    const ok = "both" in c.expect ? (g === "accept") === (c.expect.both === "accept") && (j === "accept") === (c.expect.both === "accept") : g !== "accept";
    if (!ok) out.push(`${c.name}: gateway ${g}, jose ${j}, expected ${JSON.stringify(c.expect)}`);
  }
  return out;
}
