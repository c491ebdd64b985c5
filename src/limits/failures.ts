// Limits guessing: failed secret checks are counted per (client id, source address) in a sliding
// window (RFC 6819 §5.1.4.2.3 "Prevent Online Guessing"; RFC 6749 §10.10). A pair over the limit
// is refused with 429 and Retry-After (RFC 6585 §4) until its oldest failure leaves the window,
// even with the right secret; the same client from another address is not affected.
import type { FailureGuard } from "../plugins/types.ts";

export interface FailureGuardOptions {
  maxFailures: number;
  windowSeconds: number;
  /** Most (client id, address) pairs remembered; the least recently failing ones go first. */
  maxTracked?: number;
}

export const DEFAULT_MAX_TRACKED = 100_000;
const SWEEP_EVERY = 1024;

export function createFailureGuard(opts: FailureGuardOptions): FailureGuard & { readonly size: number } {
  const windowMs = opts.windowSeconds * 1000;
  const max = opts.maxFailures;
  const cap = opts.maxTracked ?? DEFAULT_MAX_TRACKED;
  // Map order is the order of the latest failure (re-inserted on each), so the first entries
  // are the ones to expire or evict first. Each list keeps at most `max` timestamps, ascending:
  // older ones can no longer change the answer.
  const failures = new Map<string, number[]>();
  let sinceSweep = 0;

  // An IP never holds a space, so the pair key is unambiguous whatever the client id holds.
  const pairKey = (clientId: string, ip: string) => `${ip} ${clientId}`;

  const live = (list: number[], now: number): number[] => {
    let i = 0;
    while (i < list.length && list[i]! + windowMs <= now) i++;
    return i === 0 ? list : list.slice(i);
  };

  /** Drops pairs whose latest failure has left the window; stops at the first live one. */
  const sweep = (now: number) => {
    for (const [k, list] of failures) {
      if (list[list.length - 1]! + windowMs > now) break;
      failures.delete(k);
    }
  };

  return {
    retryAfter(clientId, ip, now) {
      const k = pairKey(clientId, ip);
      const list = failures.get(k);
      if (list === undefined) return 0;
      const current = live(list, now);
      if (current.length === 0) {
        failures.delete(k);
        return 0;
      }
      if (current !== list) failures.set(k, current); // keeps its place: set() on an existing key
      if (current.length < max) return 0;
      // A slot frees when the oldest counted failure leaves the window.
      return Math.max(1, Math.ceil((current[current.length - max]! + windowMs - now) / 1000));
    },
    recordFailure(clientId, ip, now) {
      const k = pairKey(clientId, ip);
      const prev = failures.get(k);
      const list = prev === undefined ? [] : live(prev, now);
      list.push(now);
      if (list.length > max) list.splice(0, list.length - max);
      failures.delete(k);
      failures.set(k, list);
      if (++sinceSweep >= SWEEP_EVERY || failures.size > cap) {
        sinceSweep = 0;
        sweep(now);
      }
      // Still too many live pairs (a wide attack): forget the least recently failing ones.
      while (failures.size > cap) failures.delete(failures.keys().next().value!);
    },
    get size() {
      return failures.size;
    },
  };
}
