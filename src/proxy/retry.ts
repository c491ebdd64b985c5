// Failover around forward(): a call whose connection could not be made (nothing was sent) is
// retried on another target for any method; a call that failed after it was sent (reset, broken
// off, timed out) only for idempotent methods without a body (RFC 9110 §9.2.2: a client may
// repeat those; never a POST twice). `retries` counts retries after the first attempt.
// Each attempt's outcome feeds the target's breaker (health.ts).
//
// A retry after a connection failure goes to a target not tried yet at once (another server:
// nothing to wait for); any other retry waits retryInitialDelay × backoffFactor^(k-1) ms first,
// as Otoroshi's retry does.

import { GatewayError } from "../errors.ts";
import { type BalancingType, createBalancer, type PickContext } from "./balance.ts";
import type { HealthCheckSettings, HealthRegistry } from "./health.ts";
import { forward, type ForwardOptions, type ForwardTarget } from "./forward.ts";
import { clientGone } from "./limiter.ts";

export interface RetryPolicy {
  retries: number;
  retryInitialDelay: number;
  backoffFactor: number;
}

export interface FailoverRoute {
  /** Throws 503 ERR_NO_HEALTHY_TARGET when no target may be called. */
  readonly pickTarget: (ctx?: PickContext | null, tried?: ReadonlySet<ForwardTarget> | null) => ForwardTarget;
  /** null: no retry (the fast path). */
  readonly retry: RetryPolicy | null;
  /** backend.client.connectionTimeout (enforced where the runtime's client can: UpstreamInit). */
  readonly connectTimeoutMs?: number;
}

const MSG_NO_TARGET = "Something went wrong, no backend target of this service is healthy, you should try later. Thanks for your understanding";

export function noHealthyTarget(): GatewayError {
  // RFC 9110 §15.6.4: the service is unavailable now; Retry-After as for a busy backend.
  return new GatewayError(503, "ERR_NO_HEALTHY_TARGET", MSG_NO_TARGET, { "retry-after": "1" }, { cause: new Error("every target is out (failed health checks or open circuit breaker)") });
}

// Codes of failures to open a connection, from Bun's fetch and node:http (the Deno adapter):
// nothing reached the backend.
const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ConnectionRefused",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "FailedToOpenSocket",
  "ConnectTimeout",
  "ETIMEDOUT_CONNECT",
]);

function causeCode(e: unknown): boolean {
  for (let d = 0, x = e; d < 5 && typeof x === "object" && x !== null; d++, x = (x as { cause?: unknown }).cause) {
    const code = (x as { code?: unknown }).code;
    if (typeof code === "string" && CONNECT_CODES.has(code)) return true;
  }
  return false;
}

/** The call never reached the backend: the connection could not be made. */
export function notSent(e: unknown): boolean {
  if (!(e instanceof GatewayError)) return false;
  return e.code === "ERR_UPSTREAM_REFUSED" || (e.code === "ERR_UPSTREAM_ERROR" && causeCode(e));
}

/** The backend failed the call (not the client, not a limit): counts against its breaker. */
function backendFailed(e: unknown): boolean {
  return e instanceof GatewayError && (e.code === "ERR_UPSTREAM_REFUSED" || e.code === "ERR_UPSTREAM_ERROR" || e.code === "ERR_UPSTREAM_TIMEOUT");
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

/** One attempt, its outcome recorded on the target's breaker. */
export async function attempt(opts: ForwardOptions): Promise<Response> {
  const health = opts.target.health;
  try {
    const res = await forward(opts);
    health?.success();
    return res;
  } catch (e) {
    if (health !== undefined && backendFailed(e)) health.failure();
    throw e;
  }
}

/** The request body, replayable while the part already read is small (it is kept until then). */
export class ReplayableBody {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private chunks: Uint8Array[] = [];
  private dropped = 0;
  private size = 0;
  private done = false;
  private overflow = false;
  private gen = 0;
  private pending: Promise<void> | null = null;
  private readonly limit: number;

  constructor(source: ReadableStream<Uint8Array>, limit = 64 * 1024) {
    this.reader = source.getReader();
    this.limit = limit;
  }

  /** A new stream would carry the whole body from its first byte. */
  get replayable(): boolean {
    return !this.overflow;
  }

  private fill(): Promise<void> {
    this.pending ??= this.reader.read().then((r) => {
      this.pending = null;
      if (r.done) this.done = true;
      else {
        this.chunks.push(r.value);
        this.size += r.value.byteLength;
        if (this.size > this.limit) this.overflow = true;
      }
    });
    return this.pending;
  }

  /** The body from its start; a stream handed out before stops giving bytes. */
  stream(): ReadableStream<Uint8Array> {
    const gen = ++this.gen;
    let i = 0;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          while (gen === this.gen && i - this.dropped >= this.chunks.length) {
            if (this.done) return c.close();
            await this.fill();
          }
          if (gen !== this.gen) return c.close();
          const chunk = this.chunks[i - this.dropped]!;
          i++;
          // Past the limit nothing is kept: the chunk goes and the body is no longer replayable.
          if (this.overflow) {
            this.chunks.shift();
            this.dropped++;
          }
          c.enqueue(chunk);
        },
        // A failed call cancels its copy; the client's body stays for the next attempt.
        cancel: () => {},
      },
      { highWaterMark: 0 },
    );
  }

  /** The last attempt failed: the client's body is released. */
  dispose(reason: unknown): void {
    this.gen++;
    void this.reader.cancel(reason).catch(() => {});
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(clientGone(signal!.reason));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** forward() to `first` (route.pickTarget(ctx)), then retries on the route's other targets; breaker bookkeeping. */
export async function forwardWithFailover(route: FailoverRoute, ctx: PickContext, first: ForwardTarget, opts: Omit<ForwardOptions, "target">): Promise<Response> {
  const policy = route.retry;
  const connectTimeoutMs = route.connectTimeoutMs;
  if (policy === null) return attempt({ ...opts, target: first, connectTimeoutMs });

  const hasBody = opts.body !== null && opts.method !== "GET" && opts.method !== "HEAD";
  const replay = hasBody ? new ReplayableBody(opts.body!) : null;
  const resendable = !hasBody && IDEMPOTENT.has(opts.method);
  // Made on the first failure: a call that succeeds at once allocates nothing more.
  let tried: Set<ForwardTarget> | null = null;
  let target = first;
  for (let k = 0;; k++) {
    tried?.add(target);
    try {
      return await attempt({ ...opts, target, body: replay ? replay.stream() : opts.body, connectTimeoutMs });
    } catch (e) {
      tried ??= new Set([target]);
      const unsent = notSent(e);
      const again = k < policy.retries && (unsent ? replay === null || replay.replayable : resendable && backendFailed(e)) && !opts.signal?.aborted;
      let next: ForwardTarget | null = null;
      if (again) {
        try {
          next = route.pickTarget(ctx, tried);
        } catch {
          next = null; // no usable target left: the failure itself is the better answer
        }
      }
      // A target that timed out is not waited on a second time: a timeout is retried elsewhere only.
      if (next !== null && tried.has(next) && e instanceof GatewayError && e.code === "ERR_UPSTREAM_TIMEOUT") next = null;
      if (next === null) {
        replay?.dispose(e);
        throw e;
      }
      if (!(unsent && !tried.has(next))) await sleep(policy.retryInitialDelay * policy.backoffFactor ** k, opts.signal);
      target = next;
    }
  }
}

export interface FailoverConfig {
  loadBalancing: { type: BalancingType; headerName?: string; cookieName?: string };
  healthCheck: HealthCheckSettings;
  client: RetryPolicy & { maxErrors: number; sampleInterval: number; connectionTimeout: number };
}

/**
 * Compile time: attaches each target's health state (kept in `registry` across reloads, keyed
 * by route id and target identity; `keys` collects the keys in use), starts or reconfigures
 * its active checks, and builds the route's target choice and retry policy.
 */
export function compileFailover(routeId: string, cfg: FailoverConfig, targets: readonly ForwardTarget[], registry: HealthRegistry, keys: Set<string>): FailoverRoute {
  for (const t of targets) {
    // Identity: route id and scheme://host:port (a new tlsConfig for the same origin keeps its state).
    const key = JSON.stringify([routeId, t.origin]);
    keys.add(key);
    const name = `${t.hostname.includes(":") && !t.hostname.startsWith("[") ? `[${t.hostname}]` : t.hostname}:${t.port}`;
    const state = registry.get(key, routeId, name);
    state.backup = t.backup === true;
    state.maxErrors = cfg.client.maxErrors;
    state.sampleInterval = cfg.client.sampleInterval;
    if (registry.active) state.configureChecks(cfg.healthCheck, t);
    t.health = state;
  }
  const flags = registry.flags(routeId);
  const lb = cfg.loadBalancing;
  const pick = createBalancer(targets, {
    type: lb.type,
    headerName: lb.headerName,
    cookieName: lb.cookieName,
    hasRoom: (t) => t.limiter?.hasRoom() ?? true,
    inFlight: (t) => t.limiter?.active ?? 0,
    usable: (t) => t.health!.usable(),
    suspect: () => flags.suspect !== 0,
    identity: (t) => t.origin,
  });
  const { retries, retryInitialDelay, backoffFactor } = cfg.client;
  return {
    pickTarget: (ctx, tried) => {
      const t = pick(ctx, tried);
      if (t === null) throw noHealthyTarget();
      return t;
    },
    retry: retries === 0 ? null : { retries, retryInitialDelay, backoffFactor },
    connectTimeoutMs: cfg.client.connectionTimeout,
  };
}
