// Target health, per process: active checks (backend.healthCheck) and a passive circuit breaker
// (backend.client.maxErrors consecutive failures open it for sampleInterval ms, Otoroshi's names).
// State is keyed by route id and target identity, so a reload keeps it for targets that did
// not change and a new snapshot's balancer sees what the old one learnt.
//
// Active checks: one timer chain per target, the next check scheduled when the previous one
// ended, so at most one check per target is in flight; each is bounded by timeoutMs. A check
// passes on a 2xx or 3xx answer (nginx's default for health_check). A target starts healthy;
// `unhealthyThreshold` failures in a row take it out, `healthyThreshold` passes bring it back.
//
// The breaker: a call that could not connect, broke off, or timed out counts one error; an
// answer (whatever its status) resets the count. At maxErrors the breaker opens: the target gets
// no calls for sampleInterval ms. Then it is half-open: it takes calls again, the first success
// closes it and the next failure reopens it at once.

import { deadline } from "./deadlines.ts";
import { gauges, type TargetHealth } from "../monitoring/gauges.ts";
import type { UpstreamFetch } from "../runtime/types.ts";

export interface HealthCheckSettings {
  enabled: boolean;
  url: string;
  intervalMs: number;
  timeoutMs: number;
  unhealthyThreshold: number;
  healthyThreshold: number;
}

/** What a checker needs to call its target. */
export interface CheckTarget {
  origin: string;
  hostHeader: string;
  fetch: UpstreamFetch;
}

/** Per route: how many of its targets may be unusable now (0: the balancer's fast path). */
export interface RouteFlags {
  suspect: number;
}

const now = () => performance.now();

/** A timer that never keeps the process alive by itself; returns its cancel function. */
function later(ms: number, fire: () => void): () => void {
  const t = setTimeout(fire, ms);
  (t as { unref?: () => void }).unref?.();
  return () => clearTimeout(t);
}

export class TargetState {
  readonly route: string;
  /** "host:port". */
  readonly target: string;
  readonly flags: RouteFlags;
  backup = false;
  maxErrors = 20;
  sampleInterval = 2000;
  /** Consecutive failed calls. */
  errors = 0;
  /** performance.now() until which the breaker is open; 0: closed. */
  openUntil = 0;
  /** Result of the active checks (true while they are off). */
  checkUp = true;
  private okRun = 0;
  private failRun = 0;
  private lastCheckAt: number | null = null;
  private lastCheckProblem: string | null = null;
  private flagged = false;
  private check: HealthCheckSettings | null = null;
  private checkKey = "";
  private timer: (() => void) | null = null;
  private inFlight: AbortController | null = null;
  private stopped = false;

  constructor(route: string, target: string, flags: RouteFlags) {
    this.route = route;
    this.target = target;
    this.flags = flags;
  }

  /** The balancer may send a call here now (closed or half-open breaker, checks passing). */
  usable(): boolean {
    return this.checkUp && (this.openUntil === 0 || now() >= this.openUntil);
  }

  /** A call got an answer. Cheap when nothing was wrong: one comparison. */
  success(): void {
    if (this.errors !== 0 || this.openUntil !== 0) {
      this.errors = 0;
      this.openUntil = 0;
      this.refresh();
    }
  }

  /** A call failed (not connected, broken off, timed out). */
  failure(): void {
    this.errors++;
    if (this.errors >= this.maxErrors) {
      this.openUntil = now() + this.sampleInterval;
      this.refresh();
    }
  }

  breaker(): "closed" | "open" | "half-open" {
    return this.openUntil === 0 ? "closed" : now() < this.openUntil ? "open" : "half-open";
  }

  private refresh(): void {
    const f = !this.checkUp || this.openUntil !== 0;
    if (f !== this.flagged) {
      this.flagged = f;
      this.flags.suspect += f ? 1 : -1;
    }
  }

  /** (Re)configures the active checks; unchanged settings keep the running chain. */
  configureChecks(settings: HealthCheckSettings | null, target: CheckTarget): void {
    const key = settings?.enabled ? JSON.stringify([settings, target.origin, target.hostHeader]) : "";
    if (key === this.checkKey && !this.stopped) return;
    this.stopChecks();
    this.stopped = false;
    this.checkKey = key;
    if (!settings?.enabled) {
      this.check = null;
      this.checkUp = true;
      this.okRun = this.failRun = 0;
      this.refresh();
      return;
    }
    this.check = settings;
    const url = /^https?:\/\//i.test(settings.url) ? settings.url : target.origin + settings.url;
    // A full URL names its own host; a path is asked of the target under its own Host.
    const headers: Record<string, string> = { "user-agent": "otoroshi-lite-health-check", accept: "*/*" };
    if (url.startsWith(target.origin + "/")) headers.host = target.hostHeader;
    const run = async () => {
      this.timer = null;
      if (this.stopped) return;
      const ac = new AbortController();
      this.inFlight = ac;
      const cancel = deadline(settings.timeoutMs, () => ac.abort(new DOMException("health check timed out", "TimeoutError")));
      let problem: string | null = null;
      try {
        const res = await target.fetch(url, { method: "GET", headers, redirect: "manual", signal: ac.signal });
        void res.body?.cancel().catch(() => {});
        if (res.status < 200 || res.status > 399) problem = `status ${res.status}`;
      } catch (e) {
        problem = ac.signal.aborted ? "timeout" : errorCode(e);
      } finally {
        cancel();
        this.inFlight = null;
      }
      if (this.stopped) return;
      this.record(problem, settings);
      this.timer = later(settings.intervalMs, () => void run());
    };
    void run();
  }

  private record(problem: string | null, s: HealthCheckSettings): void {
    this.lastCheckAt = Date.now();
    this.lastCheckProblem = problem;
    if (problem === null) {
      this.failRun = 0;
      if (++this.okRun >= s.healthyThreshold && !this.checkUp) {
        this.checkUp = true;
        this.refresh();
      }
    } else {
      this.okRun = 0;
      if (++this.failRun >= s.unhealthyThreshold && this.checkUp) {
        this.checkUp = false;
        this.refresh();
      }
    }
  }

  stopChecks(): void {
    this.stopped = true;
    this.timer?.();
    this.timer = null;
    this.inFlight?.abort();
    this.inFlight = null;
  }

  /** Leaves the route's count (the target is gone from the config). */
  detach(): void {
    this.stopChecks();
    if (this.flagged) {
      this.flagged = false;
      this.flags.suspect--;
    }
  }

  status(): Record<string, unknown> {
    return {
      route: this.route,
      target: this.target,
      backup: this.backup,
      healthy: this.usable(),
      check: this.check === null ? "off" : this.checkUp ? "up" : "down",
      lastCheck: this.lastCheckAt === null ? null : new Date(this.lastCheckAt).toISOString(),
      lastCheckProblem: this.lastCheckProblem,
      breaker: this.breaker(),
      consecutiveErrors: this.errors,
    };
  }
}

/** An error's code (ECONNREFUSED, ENOTFOUND…), never its message (it may carry addresses). */
function errorCode(e: unknown): string {
  for (let d = 0, x = e; d < 4 && typeof x === "object" && x !== null; d++, x = (x as { cause?: unknown }).cause) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === "string" && /^[A-Za-z_]{2,40}$/.test(code)) return code;
  }
  return "error";
}

export class HealthRegistry {
  private readonly byKey = new Map<string, TargetState>();
  private readonly routes = new Map<string, RouteFlags>();
  /** false (`check`): never start active checks. */
  readonly active: boolean;
  constructor(active = true) {
    this.active = active;
  }

  flags(routeId: string): RouteFlags {
    let f = this.routes.get(routeId);
    if (f === undefined) this.routes.set(routeId, f = { suspect: 0 });
    return f;
  }

  get(key: string, routeId: string, target: string): TargetState {
    let s = this.byKey.get(key);
    if (s === undefined) this.byKey.set(key, s = new TargetState(routeId, target, this.flags(routeId)));
    return s;
  }

  /** After a compile: targets no longer named stop their checks and are forgotten. */
  retainOnly(keys: ReadonlySet<string>): void {
    for (const [k, s] of this.byKey) {
      if (keys.has(k)) continue;
      s.detach();
      this.byKey.delete(k);
    }
    const live = new Set([...this.byKey.values()].map((s) => s.route));
    for (const r of this.routes.keys()) if (!live.has(r)) this.routes.delete(r);
  }

  /** Shutdown: every checker stops (the states stay readable). */
  stopAll(): void {
    for (const s of this.byKey.values()) s.stopChecks();
  }

  status(): Record<string, unknown>[] {
    return [...this.byKey.values()].map((s) => s.status());
  }

  gauges(): TargetHealth[] {
    return [...this.byKey.values()].map((s) => ({ route: s.route, target: s.target, healthy: s.usable() }));
  }
}

/** The process's registry; the metrics endpoint reads it through the gauges. */
export const processHealth = new HealthRegistry();
gauges.setTargetHealthSource(() => processHealth.gauges());
