// Per-API-key quotas (throttlingQuota, dailyQuota, monthlyQuota), counted per client id across
// all routes. Fixes Otoroshi's W28: the throttling window is one whole UTC second (not 10 s),
// days and months are UTC, refused calls are not counted, and a 429 says when to come back.
//
// The enforcer lives for the whole process, outside any snapshot: it reads the limits from the
// key of each call, so a reload that changes a limit applies it to the count already made.
import { GatewayError } from "../errors.ts";
import { log } from "../log.ts";
import type { ApiKeyRecord } from "../plugins/apikeys/registry.ts";
import type { QuotaEnforcer } from "../plugins/types.ts";
import { type ConsumeOutcome, type CounterStore, createMemoryStore, type WindowName, type WindowSlot } from "./counter-store.ts";
import { createRedisStore } from "./redis.ts";

export interface QuotaStatus {
  store: "memory" | "redis";
  healthy: boolean;
  lastError?: string;
}

export interface QuotaEnforcerHandle extends QuotaEnforcer {
  /** Stops the flush timer and writes the counters a last time (memory), or disconnects (Redis). */
  close(): Promise<void>;
  status(): QuotaStatus;
}

export interface QuotaOptions {
  stateDir: string;
  /** "redis://host:port[/db]": counters shared by every instance using it. */
  store?: string;
  storeUnavailable: "open" | "closed";
  flushIntervalMs: number;
  /** Redis command timeout, ms. */
  timeoutMs?: number;
}

export const MSG_QUOTA_EXCEEDED = "You performed too much requests";
const UNAVAILABLE_LOG_EVERY_MS = 10_000;

interface Slot extends WindowSlot {
  /** Window length in seconds, for RateLimit-Policy's w. */
  readonly span: number;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** The three fixed windows `now` falls in; each is counted, and limited when the key says so. */
export function quotaWindows(now: number, limits: { throttlingQuota?: number; dailyQuota?: number; monthlyQuota?: number }): Slot[] {
  const d = new Date(now);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const sec = Math.floor(now / 1000);
  const monthStart = Date.UTC(y, m, 1);
  const monthEnd = Date.UTC(y, m + 1, 1);
  return [
    { name: "second", id: String(sec), limit: limits.throttlingQuota, resetAt: (sec + 1) * 1000, span: 1 },
    // UTC days have no DST: always 86400 s (POSIX time ignores leap seconds).
    { name: "daily", id: `${y}-${pad(m + 1)}-${pad(d.getUTCDate())}`, limit: limits.dailyQuota, resetAt: Date.UTC(y, m, d.getUTCDate() + 1), span: 86_400 },
    { name: "monthly", id: `${y}-${pad(m + 1)}`, limit: limits.monthlyQuota, resetAt: monthEnd, span: (monthEnd - monthStart) / 1000 },
  ];
}

/** Whole seconds until `resetAt`, at least 1 (RFC 6585 §4 / RFC 9110 §10.2.3: delay-seconds). */
const secondsUntil = (resetAt: number, now: number) => Math.max(1, Math.ceil((resetAt - now) / 1000));

const REMAINING_HEADER: Partial<Record<WindowName, string>> = {
  daily: "Otoroshi-Daily-Calls-Remaining",
  monthly: "Otoroshi-Monthly-Calls-Remaining",
};

/**
 * Otoroshi's remaining-calls headers plus draft-ietf-httpapi-ratelimit-headers: RateLimit-Policy
 * lists every limited window of the key, RateLimit reports the one that binds the client
 * (fewest calls left; on a tie the one that resets last, since it keeps the client waiting).
 */
function quotaHeaders(slots: readonly Slot[], counts: readonly number[], now: number, binding?: Slot): [string, string][] {
  const out: [string, string][] = [];
  let tightest: { slot: Slot; left: number } | undefined;
  slots.forEach((s, i) => {
    if (s.limit === undefined) return;
    const left = Math.max(0, s.limit - counts[i]!);
    const header = REMAINING_HEADER[s.name];
    if (header) out.push([header, String(left)]);
    if (!tightest || left < tightest.left || (left === tightest.left && s.resetAt > tightest.slot.resetAt)) tightest = { slot: s, left };
  });
  if (binding) tightest = { slot: binding, left: 0 };
  if (!tightest) return out;
  const policies = slots.filter((s) => s.limit !== undefined).map((s) => `"${s.name}";q=${s.limit};w=${s.span}`);
  out.push(["RateLimit-Policy", policies.join(", ")]);
  out.push(["RateLimit", `"${tightest.slot.name}";r=${tightest.left};t=${secondsUntil(tightest.slot.resetAt, now)}`]);
  return out;
}

export function createQuotaEnforcer(opts: QuotaOptions, injected?: CounterStore): QuotaEnforcerHandle {
  const store: CounterStore = injected ??
    (opts.store ? createRedisStore(opts.store, { timeoutMs: opts.timeoutMs ?? 500 }) : createMemoryStore({ stateDir: opts.stateDir, flushIntervalMs: opts.flushIntervalMs }));
  let lastLog = -Infinity;
  let suppressed = 0;
  let failing = false;

  const finish = (slots: Slot[], outcome: ConsumeOutcome, now: number): [string, string][] => {
    if (failing) {
      failing = false;
      log("info", "quota.store_recovered", { store: store.kind });
    }
    if (outcome.allowed) return quotaHeaders(slots, outcome.counts, now);
    // The client may call again when every exceeded window has ended: wait for the last one.
    let binding: Slot | undefined;
    slots.forEach((s, i) => {
      if (s.limit !== undefined && outcome.counts[i]! + 1 > s.limit && (!binding || s.resetAt > binding.resetAt)) binding = s;
    });
    const headers: Record<string, string> = { "retry-after": String(secondsUntil(binding!.resetAt, now)) };
    for (const [k, v] of quotaHeaders(slots, outcome.counts, now, binding)) headers[k.toLowerCase()] = v;
    throw new GatewayError(429, "ERR_QUOTA_EXCEEDED", MSG_QUOTA_EXCEEDED, headers);
  };

  const unavailable = (err: unknown): [string, string][] => {
    failing = true;
    const t = Date.now();
    if (t - lastLog >= UNAVAILABLE_LOG_EVERY_MS) {
      const action = opts.storeUnavailable === "open" ? "calls allowed without quota" : "calls refused with 503";
      log("warn", "quota.store_unavailable", { store: store.kind, mode: opts.storeUnavailable, action, error: (err as Error).message, suppressed });
      lastLog = t;
      suppressed = 0;
    } else suppressed++;
    if (opts.storeUnavailable === "closed") throw new GatewayError(503, "ERR_INTERNAL", "Quota store unavailable", {}, { cause: err });
    return [];
  };

  return {
    consume(clientId: string, key: ApiKeyRecord, now: number) {
      const { throttlingQuota, dailyQuota, monthlyQuota } = key.config;
      // A key without any quota never waits for (or depends on) the counter store.
      if (throttlingQuota === undefined && dailyQuota === undefined && monthlyQuota === undefined) return [];
      const slots = quotaWindows(now, key.config);
      let result: ConsumeOutcome | Promise<ConsumeOutcome>;
      try {
        result = store.consume(clientId, slots, now);
      } catch (err) {
        return unavailable(err);
      }
      if (result instanceof Promise) return result.then((o) => finish(slots, o, now), unavailable);
      return finish(slots, result, now);
    },
    status() {
      return { store: store.kind, ...store.health() };
    },
    close: () => store.close(),
  };
}
