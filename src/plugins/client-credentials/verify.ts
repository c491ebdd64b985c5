// Verification of the access tokens this service issues. The Apikeys plugin calls it on every
// request that carries one, so successful results are cached until the token expires.
import type { Keyring } from "../../keys/keyring.ts";
import { verifyJwt } from "../../keys/jwt.ts";
import type { VerifyResult } from "../../keys/jwt.ts";
import type { ClientCredentialServiceConfig } from "../../config/schema.ts";
import type { TokenVerifier } from "../types.ts";
import type { HostMatcher } from "./issuer.ts";
import { issuerCheck } from "./issuer.ts";

// RFC 7519 §4.1.4: "some small leeway, usually no more than a few minutes".
export const LEEWAY_SEC = 30;
const CACHE_LIMIT = 10_000;

interface Cached {
  clientId: string;
  kid: string;
  exp: number;
}

export interface Verifier {
  verifyToken: TokenVerifier;
  /** The full check with the decoded payload, for introspection. */
  verify(token: string, nowMs: number): VerifyResult;
}

/** RFC 9068 §2.2 names client_id; Otoroshi's tokens carry cid; sub is the last resort (W1). */
export function clientIdOf(payload: Record<string, unknown>): string | undefined {
  for (const claim of ["client_id", "cid", "sub"]) {
    const v = payload[claim];
    if (typeof v === "string" && v !== "") return v;
  }
  return undefined;
}

export function createVerifier(config: ClientCredentialServiceConfig, signingKeys: Keyring, hostMatches: HostMatcher): Verifier {
  const issuer = issuerCheck(config.issuer, hostMatches);
  const resolveKey = (kid: string) => signingKeys.get(kid);
  const verify = (token: string, nowMs: number): VerifyResult =>
    verifyJwt(token, {
      now: Math.floor(nowMs / 1000),
      leewaySec: LEEWAY_SEC,
      audience: config.audience,
      issuer,
      // RFC 8725 §3.10: only the gateway's own signing key pairs, chosen by kid, never by the token.
      resolveKey,
      // RFC 9068 §4 / RFC 8725 §3.11: only access tokens, so no other JWT of ours is mistaken for one.
      allowedTyp: ["at+jwt"],
    });

  // Per snapshot: a config change builds a new verifier, so the cache never outlives it.
  const cache = new Map<string, Cached>();

  const verifyToken: TokenVerifier = (token, ctx) => {
    const nowSec = Math.floor(ctx.now / 1000);
    const hit = cache.get(token);
    if (hit !== undefined) {
      if (hit.exp + LEEWAY_SEC > nowSec) return { ok: true, clientId: hit.clientId, kid: hit.kid };
      cache.delete(token);
      return { ok: false, reason: "expired" };
    }
    const r = verify(token, ctx.now);
    if (!r.ok) return { ok: false, reason: r.reason };
    const clientId = clientIdOf(r.payload);
    if (clientId === undefined) return { ok: false, reason: "malformed" };
    const kid = r.header.kid as string;
    // Clearing at the limit keeps the bound without an LRU's bookkeeping on every hit.
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(token, { clientId, kid, exp: r.payload.exp as number });
    return { ok: true, clientId, kid };
  };

  return { verifyToken, verify };
}
