// Limits guessing: failed secret checks are counted per (client id, source address) in a sliding
// window (RFC 6819 §5.1.4.2.3 "Prevent Online Guessing"; RFC 6749 §10.10). A pair over the limit
// is refused with 429 and Retry-After (RFC 6585 §4) until its oldest failure leaves the window,
// even with the right secret; the same client from another address is not affected.
//
// Unknown client ids are counted exactly like existing ones (same key, same limit, same answer):
// a limiter that only tracked real ids would tell them apart (RFC 6819 §4.3.5). So the table
// grows with what attackers send: it is capped, and long ids are hashed into the key.
import { createHash } from "node:crypto";
import { GatewayError } from "../errors.ts";
import { log } from "../log.ts";
import type { FailureGuard } from "../plugins/types.ts";
import { parseRedisUrl, RedisClient, runScript } from "./redis.ts";

export interface FailureGuardOptions {
  maxFailures: number;
  windowSeconds: number;
  /** Most (client id, address) pairs remembered; the least recently failing ones go first. */
  maxTracked?: number;
}

export interface FailureGuardHandle extends FailureGuard {
  close(): Promise<void>;
}

export const DEFAULT_MAX_TRACKED = 100_000;
const SWEEP_EVERY = 1024;
const MAX_PLAIN_KEY = 80;

/** Thrown (as a rejection) when the shared store is down and server.storeUnavailable is "closed". */
export class LimiterUnavailable extends GatewayError {
  constructor(cause: unknown) {
    super(503, "ERR_INTERNAL", "Failed-secret limiter unavailable", {}, { cause });
  }
}

/**
 * One key per pair, of bounded length whatever the client sent: an IP never holds a space, so
 * `ip id` is unambiguous; a longer pair is hashed (NUL never occurs in an address or a header
 * value, so a hashed key cannot equal a plain one).
 */
export function pairKey(clientId: string, ip: string): string {
  const k = `${ip} ${clientId}`;
  return k.length <= MAX_PLAIN_KEY ? k : `\u0000${createHash("sha256").update(k).digest("base64url")}`;
}

const waitSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** The in-memory limiter: synchronous, so a check and its count never interleave with another. */
export interface MemoryFailureGuard extends FailureGuardHandle {
  retryAfter(clientId: string, ip: string, now: number): number;
  recordFailure(clientId: string, ip: string, now: number): number;
  readonly size: number;
}

export function createFailureGuard(opts: FailureGuardOptions): MemoryFailureGuard {
  const windowMs = opts.windowSeconds * 1000;
  const max = opts.maxFailures;
  const cap = opts.maxTracked ?? DEFAULT_MAX_TRACKED;
  // Map order is the order of the latest failure (re-inserted on each), so the first entries
  // are the ones to expire or evict first. Each list keeps at most `max` timestamps, ascending:
  // older ones can no longer change the answer.
  const failures = new Map<string, number[]>();
  let sinceSweep = 0;

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

  const wait = (k: string, now: number): number => {
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
    return waitSeconds(current[current.length - max]! + windowMs - now);
  };

  return {
    retryAfter: (clientId, ip, now) => wait(pairKey(clientId, ip), now),
    recordFailure(clientId, ip, now) {
      const k = pairKey(clientId, ip);
      const locked = wait(k, now);
      if (locked > 0) return locked;
      const list = failures.get(k) ?? [];
      list.push(now);
      failures.delete(k);
      failures.set(k, list);
      if (++sinceSweep >= SWEEP_EVERY || failures.size > cap) {
        sinceSweep = 0;
        sweep(now);
      }
      // Still too many live pairs (a wide attack): forget the least recently failing ones.
      while (failures.size > cap) failures.delete(failures.keys().next().value!);
      return 0;
    },
    close: async () => {},
    get size() {
      return failures.size;
    },
  };
}

// One sorted set per pair (score: failure time). ARGV: now, window start (scores at or below it
// have left the window), max, and for FAIL a unique member. Both return the ms to wait, or 0.
// The count and the add are one script, so Redis runs them atomically (EVAL, "Atomicity of
// scripts"): concurrent wrong guesses from many instances cannot overshoot maxFailures.
const LOCKED = `
local n = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[2], '+inf')
local max = tonumber(ARGV[3])
if n >= max then
  local oldest = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', n - max, 1)
  return tonumber(oldest[2]) - tonumber(ARGV[2])
end`;
const CHECK = `${LOCKED}\nreturn 0`;
const FAIL = `redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
${LOCKED}
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) - tonumber(ARGV[2]))
return 0`;

const UNAVAILABLE_LOG_EVERY_MS = 10_000;

export interface SharedGuardOptions extends FailureGuardOptions {
  /** server.store: "redis://…". */
  store: string;
  storeUnavailable: "open" | "closed";
  /** Redis command timeout, ms. */
  timeoutMs?: number;
}

/**
 * The same limiter shared by every instance using one Redis (server.store), on its own
 * connection. When Redis cannot answer: "open" falls back to this process's own limiter (calls
 * go on, guessing is still limited per instance), "closed" refuses with 503, as quotas do.
 */
export function createSharedFailureGuard(opts: SharedGuardOptions, client = new RedisClient(parseRedisUrl(opts.store), opts.timeoutMs ?? 500)): FailureGuardHandle {
  const windowMs = opts.windowSeconds * 1000;
  const local = createFailureGuard(opts);
  const keyOf = (clientId: string, ip: string) => `otoroshi-lite:failed:${pairKey(clientId, ip)}`;
  const tag = `${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
  let seq = 0;
  let failing = false;
  let lastLog = -Infinity;
  let suppressed = 0;

  const ok = (ms: unknown): number => {
    if (typeof ms !== "number") throw new Error("unexpected reply from the failure script");
    if (failing) {
      failing = false;
      log("info", "failures.store_recovered", { store: "redis" });
    }
    return ms > 0 ? waitSeconds(ms) : 0;
  };
  const down = (err: unknown, fallback: () => number): number => {
    failing = true;
    const t = Date.now();
    if (t - lastLog >= UNAVAILABLE_LOG_EVERY_MS) {
      const action = opts.storeUnavailable === "open" ? "this instance counts alone" : "secret checks refused with 503";
      log("warn", "failures.store_unavailable", { store: "redis", mode: opts.storeUnavailable, action, error: (err as Error).message, suppressed });
      lastLog = t;
      suppressed = 0;
    } else suppressed++;
    if (opts.storeUnavailable === "closed") throw new LimiterUnavailable(err);
    return fallback();
  };
  const args = (now: number) => [String(now), String(now - windowMs), String(opts.maxFailures)];

  return {
    retryAfter(clientId, ip, now) {
      return runScript(client, CHECK, [keyOf(clientId, ip)], args(now)).then(ok, (e) => down(e, () => local.retryAfter(clientId, ip, now)));
    },
    recordFailure(clientId, ip, now) {
      const member = `${now}.${tag}.${seq++}`;
      return runScript(client, FAIL, [keyOf(clientId, ip)], [...args(now), member]).then(ok, (e) => down(e, () => local.recordFailure(clientId, ip, now)));
    },
    close: async () => client.close(),
  };
}

/** The limiter server.failedAuth and server.store describe: in memory, or shared through Redis. */
export function createFailureGuardFor(opts: FailureGuardOptions & { store?: string; storeUnavailable: "open" | "closed" }): FailureGuardHandle {
  return opts.store ? createSharedFailureGuard({ ...opts, store: opts.store }) : createFailureGuard(opts);
}
