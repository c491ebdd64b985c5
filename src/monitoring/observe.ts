// The front door's record of a request: its id, what routing and the backend call found, and,
// when its response has ended (body sent, or the client gone), one access line and the counters.
// Small bodies the gateway made or read whole are done when the handler returns; a streamed
// backend body is watched chunk by chunk (one more stream layer, only above 16 KiB: forward.ts).
import { GatewayError } from "../errors.ts";
import { scrub } from "../log.ts";
import { splitUrl } from "../request.ts";
import type { ConnInfo } from "../runtime/types.ts";
import { accessLogOn, writeAccessLine } from "./access-log.ts";
import { INTERNAL, metrics, OAUTH, type RouteMetrics, UNMATCHED } from "./metrics.ts";
import { requestIdFor } from "./request-id.ts";
import { READ_WHOLE_MAX } from "../proxy/forward.ts";
import { watchedBody } from "../proxy/watched-body.ts";

export interface RequestRecord {
  readonly start: number;
  readonly requestId: string;
  /** The matched route's counters (their `route` is the id), or null. */
  route: RouteMetrics | null;
  /** An OAuth endpoint answered. */
  sink: boolean;
  /** One of the gateway's own endpoints answered (status, monitoring, ACME). */
  internal: boolean;
  /** "host:port" of the backend target called. */
  target: string | null;
  clientId: string | null;
  /** The Otoroshi-Error-Code of a refusal or failure. */
  error: string | null;
  /** performance.now() when the backend's headers arrived; 0: no backend answered. */
  upstreamAt: number;
  /** Request body bytes counted as they streamed (a chunked upload); -1: not counted. */
  bytesIn: number;
  /** Client address after trusted X-Forwarded-For; null: the socket peer. */
  clientIp: string | null;
  /** The canonical path (no query); null: the received one. */
  path: string | null;
  /** The body is a backend's stream: watch it to its end. */
  streamed: boolean;
}

/** ConnInfo of a WebSocket request (the listener's upgrade hook, src/runtime/types.ts). */
type Upgradable = { upgrade?: (headers: Headers, events: unknown) => Response };

export type ObservedHandler = (req: Request, info: ConnInfo, rec: RequestRecord) => Promise<Response>;

const unmatched = metrics.route(UNMATCHED);
const oauth = metrics.route(OAUTH);
const internal = metrics.route(INTERNAL);

// What an error code counts as, besides the request itself (codes are src/errors.ts's).
const AUTH: Record<string, string> = {
  ERR_APIKEY_MISSING: "missing",
  ERR_APIKEY_INVALID: "invalid",
  ERR_TOKEN_EXPIRED: "expired",
  ERR_APIKEY_UNAUTHORIZED: "unauthorized",
  ERR_FORBIDDEN: "read_only",
  ERR_TOO_MANY_FAILURES: "locked_out",
};
const UPSTREAM: Record<string, string> = {
  ERR_UPSTREAM_REFUSED: "refused",
  ERR_UPSTREAM_TIMEOUT: "timeout",
  ERR_UPSTREAM_ERROR: "error",
  ERR_UPSTREAM_BUSY: "busy",
  ERR_NO_TARGET: "no_target",
  ERR_NO_HEALTHY_TARGET: "no_healthy_target",
};
const QUOTA: Record<string, string> = { ERR_QUOTA_EXCEEDED: "quota", ERR_TOO_MANY_FAILURES: "failed_auth" };

const DECIMAL = /^\d{1,15}$/;

function declaredIn(req: Request): number {
  const cl = req.headers.get("content-length");
  const n = cl === null ? 0 : Number(cl);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

/**
 * Wraps the gateway's handler: every request gets a record and, once its response has ended,
 * one access line and its counts. `perClient` says whether per-client-id counters are kept.
 */
export function observed(inner: ObservedHandler, perClient: () => boolean): (req: Request, info: ConnInfo) => Promise<Response> {
  const done = (req: Request, info: ConnInfo, rec: RequestRecord, status: number, bytesOut: number) => {
    metrics.ended();
    const now = performance.now();
    const rm = rec.route ?? (rec.sink ? oauth : rec.internal ? internal : unmatched);
    rm.observe(req.method, status, (now - rec.start) / 1000);
    const code = rec.error;
    if (code !== null) {
      const a = AUTH[code];
      if (a !== undefined) metrics.authFailure(rm, a);
      const u = UPSTREAM[code];
      if (u !== undefined) metrics.upstreamError(rm, u);
      const q = QUOTA[code];
      if (q !== undefined) metrics.quotaRejected(q);
    } else if (rec.sink && status === 401) metrics.authFailure(rm, "invalid_client");
    if (rec.clientId !== null && perClient()) metrics.clientRequest(rec.clientId);
    if (!accessLogOn()) return;
    writeAccessLine(
      JSON.stringify({
        time: new Date().toISOString(),
        event: "access",
        requestId: rec.requestId,
        method: req.method,
        // The target URI's authority as the router read it (RFC 9112 §3.2.2: absolute form first).
        // Both are the client's text: a token pasted into a path is masked like in any log line.
        host: scrub(info.authority ?? req.headers.get("host") ?? splitUrl(req.url).authority),
        path: scrub(rec.path ?? splitUrl(req.url).path),
        status,
        durationMs: Math.round((now - rec.start) * 1000) / 1000,
        bytesIn: rec.bytesIn >= 0 ? rec.bytesIn : declaredIn(req),
        bytesOut,
        clientIp: rec.clientIp ?? info.remoteAddress,
        route: rec.route?.route ?? null,
        target: rec.target,
        clientId: rec.clientId,
        error: code,
        upstreamMs: rec.upstreamAt > 0 ? Math.round((rec.upstreamAt - rec.start) * 1000) / 1000 : null,
      }),
    );
  };

  return async (req, info) => {
    const rec: RequestRecord = {
      start: performance.now(),
      requestId: requestIdFor(req.headers.get("x-request-id")),
      route: null,
      sink: false,
      internal: false,
      target: null,
      clientId: null,
      error: null,
      upstreamAt: 0,
      bytesIn: -1,
      clientIp: null,
      path: null,
      streamed: false,
    };
    metrics.started();
    // A WebSocket's 101 carries the id too (the adapter builds that response from these headers).
    const up = (info as Upgradable).upgrade;
    if (up !== undefined) info = { ...info, upgrade: (h: Headers, ev: unknown) => (h.set("x-request-id", rec.requestId), up(h, ev)) } as ConnInfo;
    let res: Response;
    try {
      res = await inner(req, info, rec);
    } catch (e) {
      metrics.ended();
      throw e;
    }
    const status = res.status;
    if (status === 101) {
      done(req, info, rec, status, 0);
      return res;
    }
    if (rec.error === null && status >= 400) rec.error = res.headers.get("otoroshi-error-code");
    try {
      res.headers.set("x-request-id", rec.requestId);
    } catch {
      // Immutable headers (a fetch Response on some runtimes): answer with a copy.
      res = new Response(res.body, { status, statusText: res.statusText, headers: res.headers });
      res.headers.set("x-request-id", rec.requestId);
    }
    // RFC 9110 §9.3.2, §15.3.5, §15.4.5: no content, whatever Content-Length says.
    if (req.method === "HEAD" || status === 204 || status === 304) {
      done(req, info, rec, status, 0);
      return res;
    }
    // A body the gateway made or read whole is sent in one go: done now. That is every body with
    // a declared length of ours, and a backend's up to 16 KiB (forward.ts reads those whole).
    // Decided before reading `res.body`, which would turn an in-memory body into a stream (Bun).
    const cl = res.headers.get("content-length");
    const size = cl !== null && DECIMAL.test(cl) ? Number(cl) : -1;
    if (size >= 0 && (!rec.streamed || size <= READ_WHOLE_MAX)) {
      done(req, info, rec, status, size);
      return res;
    }
    const body = res.body;
    if (body === null) {
      done(req, info, rec, status, 0);
      return res;
    }
    if (!rec.streamed) {
      // Ours, without a declared length (a JSON answer): small; its size is learnt by reading it.
      const bytes = await res.arrayBuffer();
      done(req, info, rec, status, bytes.byteLength);
      return new Response(bytes, { status, statusText: res.statusText, headers: res.headers });
    }
    let ended = false;
    const end = (bytes: number, how: "done" | "cancel" | "error", err?: unknown) => {
      if (ended) return;
      ended = true;
      // The client went away before the body's end: 499, as nginx records a client that left.
      // The backend broke off its body, or a body deadline cut it (src/proxy/stream.ts): an
      // upstream error, counted as one; the status already sent stays the line's.
      if (how === "error" && rec.error === null) rec.error = err instanceof GatewayError ? err.code : "ERR_UPSTREAM_ERROR";
      done(req, info, rec, how === "cancel" ? 499 : status, bytes);
    };
    return new Response(watchedBody(body, end), { status, statusText: res.statusText, headers: res.headers });
  };
}
