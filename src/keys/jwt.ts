// Compact JWS (RFC 7515 §7.1) signed and verified with synchronous node:crypto: no promise per
// request, and measured faster than jose's WebCrypto path for RS256 verify and EdDSA.
import { sign, verify } from "node:crypto";
import { Buffer } from "node:buffer";
import type { JwsAlg, KeyPair } from "./keyring.ts";

export type VerifyFailure =
  | "malformed"
  | "alg_not_allowed"
  | "unknown_kid"
  | "bad_signature"
  | "expired"
  | "not_yet_valid"
  | "missing_exp"
  | "bad_audience"
  | "bad_issuer"
  | "bad_typ"
  | "iat_in_future";

export interface VerifyOptions {
  /** Epoch seconds (injected clock). */
  now: number;
  leewaySec: number;
  /** `aud` (a string or an array) must contain it. */
  audience: string;
  issuer: (iss: unknown) => boolean;
  /** Only the gateway's own signing keys: a token never chooses its key (RFC 8725 §3.10). */
  resolveKey: (kid: string) => KeyPair | undefined;
  /** Accepted `typ` values; "" admits a token without typ. Absent: typ is not checked. */
  allowedTyp?: readonly string[];
}

export type VerifyResult =
  | { ok: true; header: Record<string, unknown>; payload: Record<string, unknown> }
  | { ok: false; reason: VerifyFailure };

// RFC 7518 §3.1 / RFC 8037 §3.1: the digest per alg; Ed25519 hashes internally (null).
const HASH: Record<JwsAlg, string | null> = {
  RS256: "sha256",
  ES256: "sha256",
  ES384: "sha384",
  ES512: "sha512",
  EdDSA: null,
};
// RFC 7518 §3.4: ECDSA signatures are R || S, each the curve's size in octets (IEEE P1363).
// RFC 8032 §5.1.6: an Ed25519 signature is 64 octets. RSA lengths are checked by OpenSSL.
const SIG_LENGTH: Partial<Record<JwsAlg, number>> = { ES256: 64, ES384: 96, ES512: 132, EdDSA: 64 };

const MAX_TOKEN_LENGTH = 16 * 1024;
const B64URL = /^[A-Za-z0-9_-]*$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

const b64url = (s: string) => Buffer.from(s, "utf8").toString("base64url");

// The header segment is the same for every token a key pair signs with the default header.
const defaultHeaders = new WeakMap<KeyPair, string>();

export function signJwt(kp: KeyPair, payload: Record<string, unknown>, header?: Record<string, unknown>): string {
  let h: string;
  if (header === undefined) {
    h = defaultHeaders.get(kp) ?? "";
    if (!h) defaultHeaders.set(kp, h = b64url(JSON.stringify({ alg: kp.alg, typ: "at+jwt", kid: kp.id })));
  } else {
    // alg and kid always come from the key: a header that said otherwise would make a token
    // no verifier accepts. RFC 9068 §2.1: access tokens say typ "at+jwt"; typ: undefined omits it.
    const typ = "typ" in header ? header.typ : "at+jwt";
    const fixed = { alg: kp.alg, typ, kid: kp.id };
    h = b64url(JSON.stringify(Object.assign({ ...fixed }, header, fixed)));
  }
  const input = `${h}.${b64url(JSON.stringify(payload))}`;
  const signature = sign(HASH[kp.alg], Buffer.from(input, "latin1"), { key: kp.privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${signature.toString("base64url")}`;
}

const fail = (reason: VerifyFailure): VerifyResult => ({ ok: false, reason });

export function verifyJwt(token: string, opts: VerifyOptions): VerifyResult {
  try {
    return verifyUnsafe(token, opts);
  } catch {
    // Anything that slipped past the checks below (a throwing resolveKey or issuer callback
    // included) is still a refusal, never an exception on the request path.
    return fail("malformed");
  }
}

function verifyUnsafe(token: string, opts: VerifyOptions): VerifyResult {
  if (typeof token !== "string" || token.length > MAX_TOKEN_LENGTH) return fail("malformed");
  const dot1 = token.indexOf(".");
  const dot2 = token.indexOf(".", dot1 + 1);
  if (dot1 <= 0 || dot2 <= dot1 + 1 || token.indexOf(".", dot2 + 1) !== -1) return fail("malformed");
  const h = token.slice(0, dot1);
  const p = token.slice(dot1 + 1, dot2);
  const s = token.slice(dot2 + 1);
  if (!isB64url(h) || !isB64url(p) || !isB64url(s)) return fail("malformed");

  const header = decodeObject(h);
  const payload = decodeObject(p);
  if (!header || !payload) return fail("malformed");
  // RFC 7515 §4.1.11: we understand no extension, so any crit makes the JWS invalid.
  if ("crit" in header) return fail("malformed");

  // RFC 8725 §3.1: the algorithm is the key's, never the token's choice. Checking the name
  // first turns away "none" and HS256 (the public key as HMAC secret) before any key lookup.
  const alg = header.alg;
  if (typeof alg !== "string" || !Object.hasOwn(HASH, alg)) return fail("alg_not_allowed");
  const kid = header.kid;
  if (typeof kid !== "string") return fail("unknown_kid");
  const kp = opts.resolveKey(kid);
  if (!kp) return fail("unknown_kid");
  if (alg !== kp.alg) return fail("alg_not_allowed");

  const signature = Buffer.from(s, "base64url");
  // Only the canonical encoding: otherwise several strings would carry one signature.
  if (signature.toString("base64url") !== s) return fail("bad_signature");
  const expected = SIG_LENGTH[kp.alg];
  if (signature.length === 0 || (expected !== undefined && signature.length !== expected)) return fail("bad_signature");
  const data = Buffer.from(token.slice(0, dot2), "latin1");
  const valid = verify(HASH[kp.alg], data, { key: kp.publicKey, dsaEncoding: "ieee-p1363" }, signature);
  if (!valid) return fail("bad_signature");

  const claimsFailure = checkClaims(payload, opts);
  if (claimsFailure) return fail(claimsFailure);
  if (opts.allowedTyp && !typAllowed(header.typ, opts.allowedTyp)) return fail("bad_typ");
  return { ok: true, header, payload };
}

function checkClaims(payload: Record<string, unknown>, opts: VerifyOptions): VerifyFailure | undefined {
  const { now, leewaySec: leeway } = opts;
  const { exp, nbf, iat, aud } = payload;
  // RFC 9068 §2.2: exp is REQUIRED in an access token; RFC 7519 §2 NumericDate is a number.
  if (exp === undefined) return "missing_exp";
  if (!isNumericDate(exp) || (nbf !== undefined && !isNumericDate(nbf)) || (iat !== undefined && !isNumericDate(iat))) {
    return "malformed";
  }
  // RFC 7519 §4.1.4: the current time MUST be before exp.
  if (exp + leeway <= now) return "expired";
  // RFC 7519 §4.1.5: not accepted before nbf.
  if (nbf !== undefined && nbf - leeway > now) return "not_yet_valid";
  if (iat !== undefined && iat - leeway > now) return "iat_in_future";
  // RFC 7519 §4.1.3: a single string or an array of strings.
  const audOk = typeof aud === "string" ? aud === opts.audience : Array.isArray(aud) && aud.includes(opts.audience);
  if (!audOk) return "bad_audience";
  if (!opts.issuer(payload.iss)) return "bad_issuer";
  return undefined;
}

/** RFC 7515 §4.1.9: compare case-insensitively, "application/" may be omitted. */
function typAllowed(typ: unknown, allowed: readonly string[]): boolean {
  if (typ === undefined) return allowed.includes("");
  if (typeof typ !== "string") return false;
  const want = normalizeTyp(typ);
  return allowed.some((a) => a !== "" && normalizeTyp(a) === want);
}

function normalizeTyp(typ: string): string {
  const lower = typ.toLowerCase();
  return lower.startsWith("application/") ? lower.slice(12) : lower;
}

function isNumericDate(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

function isB64url(seg: string): boolean {
  return seg.length % 4 !== 1 && B64URL.test(seg);
}

function decodeObject(seg: string): Record<string, unknown> | undefined {
  const value: unknown = JSON.parse(utf8.decode(Buffer.from(seg, "base64url")));
  return value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
