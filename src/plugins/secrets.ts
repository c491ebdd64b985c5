// Client secrets are compared in constant time: both sides are reduced to a SHA-256 digest and
// compared with timingSafeEqual, so neither content nor length leaks through timing.
// A stored secret is plain text or "sha256:<64 hex>" (for generated high-entropy secrets).
// Nothing here throws, whatever it is given: config validation refuses a malformed "sha256:"
// value, and should one get here anyway it matches no presented secret (never a 500).
import { createHash, hash, randomBytes, timingSafeEqual } from "node:crypto";

// One-shot hash: ~2.5× cheaper than createHash().update().digest() on Bun (bench/micro.ts).
const sha256 = (s: string): Buffer => hash("sha256", s, "buffer") as Buffer;

export const HASHED_PREFIX = "sha256:";

export function isHashedSecret(stored: string): boolean {
  return stored.startsWith(HASHED_PREFIX);
}

export function hashSecret(secret: string): string {
  return HASHED_PREFIX + createHash("sha256").update(secret, "utf8").digest("hex");
}

export type SecretMatcher = (presented: string) => boolean;

const HASHED = /^sha256:[0-9a-fA-F]{64}$/;

/** True for "sha256:" followed by exactly 64 hex digits (what validation accepts). */
export function isWellFormedHash(stored: string): boolean {
  return HASHED.test(stored);
}

/** Always 32 bytes: timingSafeEqual throws on buffers of different lengths. */
export function secretDigest(stored: string): Buffer {
  if (typeof stored !== "string") return randomBytes(32);
  if (isHashedSecret(stored)) return isWellFormedHash(stored) ? Buffer.from(stored.slice(HASHED_PREFIX.length), "hex") : randomBytes(32);
  return createHash("sha256").update(stored, "utf8").digest();
}

export function compileSecret(stored: string): SecretMatcher {
  const expected = secretDigest(stored);
  return (presented) => typeof presented === "string" && timingSafeEqual(sha256(presented), expected);
}

/** Burns the same work as a real comparison, for unknown client ids (no enumeration by timing). */
const dummy = compileSecret("otoroshi-lite-dummy-secret");
export function dummyCompare(presented: string): void {
  dummy(presented);
}

/** Constant-time equality of two strings of possibly different lengths. */
export function safeEqual(a: string, b: string): boolean {
  return typeof a === "string" && typeof b === "string" && timingSafeEqual(sha256(a), sha256(b));
}
