// Limits on backend calls in flight, so one slow backend cannot take every upstream connection
// (issue 8 item 3). Each target of a route has its own limit and a bounded FIFO queue, as nginx's
// `max_conns` + `queue` and Envoy's circuit breakers (max_requests / max_pending_requests) do;
// every call also counts against one process-wide budget (server.maxUpstreamRequests). A call
// that finds its target's queue full, or the budget spent, is refused at once with a 503 and
// Retry-After (RFC 9110 §15.6.4, §10.2.3) instead of waiting behind the slow backend.
//
// A slot is held from the call until the backend's response body has ended, failed or been
// cancelled: Bun's fetch holds its connection slot that long too (measured, docs/operations.md).
// The fast path — a free slot and nobody queued — is two counter increments, no promise.

import { GatewayError } from "../errors.ts";
import { deadline } from "./deadlines.ts";
import { watchedBody } from "./watched-body.ts";

/** The process-wide count of backend calls in flight, over every route and snapshot. */
export class UpstreamBudget {
  active = 0;
  max: number;
  constructor(max: number) {
    this.max = max;
  }
}

const BUSY_MSG = "Something went wrong, the backend service has too many calls in progress, you should try later. Thanks for your understanding";
// RFC 9110 §10.2.3: a short, fixed delay; the queue drains as fast as the backend answers.
const RETRY_AFTER = { "retry-after": "1" };

export function upstreamBusy(why: string): GatewayError {
  return new GatewayError(503, "ERR_UPSTREAM_BUSY", BUSY_MSG, RETRY_AFTER, { cause: new Error(why) });
}

export function clientGone(reason: unknown): GatewayError {
  return new GatewayError(499, "ERR_CLIENT_CLOSED", "Client closed the request", {}, { cause: reason });
}

interface Waiter {
  grant: () => void;
  fail: (e: GatewayError) => void;
  done: boolean;
}

export class TargetLimiter {
  /** Calls of this target in flight (each also counted in budget.active). */
  active = 0;
  /** Waiters still waiting (cancelled ones left in `waiters` are not counted). */
  queued = 0;
  private waiters: (Waiter | undefined)[] = [];
  private head = 0;

  maxConnections: number;
  queueSize: number;
  readonly budget: UpstreamBudget;

  constructor(maxConnections: number, queueSize: number, budget: UpstreamBudget) {
    this.maxConnections = maxConnections;
    this.queueSize = queueSize;
    this.budget = budget;
  }

  /** A call now would not wait (the balancer prefers such targets, as nginx skips a server at max_conns). */
  hasRoom(): boolean {
    return this.active < this.maxConnections && this.queued === 0;
  }

  /** Takes a slot when one is free and nobody is waiting for it: the fast path, no promise. */
  tryAcquire(): boolean {
    const b = this.budget;
    if (this.active >= this.maxConnections || this.queued !== 0 || b.active >= b.max) return false;
    this.active++;
    b.active++;
    return true;
  }

  /**
   * The slow path, after tryAcquire() failed: waits in FIFO order for a slot of this target,
   * at most `timeoutMs`. Rejects with a 503 ERR_UPSTREAM_BUSY when the queue is full, the
   * process-wide budget is spent or the wait times out, and with a 499 when `signal` aborts
   * (the client left: its place is freed at once).
   */
  acquire(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(clientGone(signal.reason));
    if (this.active < this.maxConnections && this.queued === 0) {
      // The target has room: what is missing is the process-wide budget. Queueing behind other
      // backends' calls is exactly the starvation this module exists to prevent.
      return Promise.reject(upstreamBusy("server.maxUpstreamRequests calls in flight"));
    }
    if (this.queued >= this.queueSize) return Promise.reject(upstreamBusy("target at backend.client.maxConnections and its queue is full"));
    return new Promise<void>((resolve, reject) => {
      let cancelTimer: (() => void) | undefined;
      const onAbort = () => settle(clientGone(signal!.reason));
      const settle = (err: GatewayError | null) => {
        if (w.done) return;
        w.done = true;
        this.queued--;
        cancelTimer?.();
        signal?.removeEventListener("abort", onAbort);
        if (err === null) resolve();
        else {
          reject(err);
          this.compact();
        }
      };
      const w: Waiter = { grant: () => settle(null), fail: settle, done: false };
      this.waiters.push(w);
      this.queued++;
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        cancelTimer = deadline(timeoutMs, () => settle(upstreamBusy("waited backend.timeout for a free connection")));
      }
    });
  }

  /** Gives a slot back: to the oldest waiter if there is one (counts unchanged), else frees it. */
  release(): void {
    if (this.queued !== 0 && this.active <= this.maxConnections) {
      while (this.head < this.waiters.length) {
        const w = this.waiters[this.head];
        this.waiters[this.head++] = undefined;
        if (w === undefined || w.done) continue;
        this.compact();
        w.grant();
        return;
      }
    }
    this.active--;
    this.budget.active--;
  }

  /** New limits from a reload; a larger limit lets waiters in at once. */
  configure(maxConnections: number, queueSize: number): void {
    this.maxConnections = maxConnections;
    this.queueSize = queueSize;
    while (this.queued !== 0 && this.active < maxConnections && this.budget.active < this.budget.max) {
      this.active++;
      this.budget.active++;
      this.release();
    }
  }

  /** Drops the consumed head of the queue (cancelled waiters leave holes until then). */
  private compact(): void {
    if (this.head === this.waiters.length || this.queued === 0) {
      if (this.queued === 0) {
        this.waiters = [];
        this.head = 0;
      }
      return;
    }
    if (this.head > 64 && this.head * 2 > this.waiters.length) {
      this.waiters = this.waiters.slice(this.head);
      this.head = 0;
    }
  }
}

/** The backend's body, calling `done` once when it ends, fails or is cancelled by the client. */
export function releasing(body: ReadableStream<Uint8Array>, done: () => void): ReadableStream<Uint8Array> {
  return watchedBody(body, () => done());
}

/**
 * Limiters outlive snapshots: a reload must not hand a target a fresh allowance while the calls
 * of the previous snapshot are still in flight. Keyed by route id and target; an idle limiter
 * that a new snapshot no longer names is dropped.
 */
export class LimiterRegistry {
  private readonly byKey = new Map<string, TargetLimiter>();
  readonly budget: UpstreamBudget;
  constructor(budget: UpstreamBudget) {
    this.budget = budget;
  }

  get(key: string, maxConnections: number, queueSize: number): TargetLimiter {
    let l = this.byKey.get(key);
    if (l === undefined) this.byKey.set(key, l = new TargetLimiter(maxConnections, queueSize, this.budget));
    else if (l.maxConnections !== maxConnections || l.queueSize !== queueSize) l.configure(maxConnections, queueSize);
    return l;
  }

  retainOnly(keys: ReadonlySet<string>): void {
    for (const [k, l] of this.byKey) if (!keys.has(k) && l.active === 0 && l.queued === 0) this.byKey.delete(k);
  }
}

/** The process's registry: its budget's max is server.maxUpstreamRequests, set by each compile. */
export const processLimiters = new LimiterRegistry(new UpstreamBudget(4096));
