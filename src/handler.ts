// The request path of one snapshot: sinks → router → route stages → proxy.
import { errorResponse, GatewayError } from "./errors.ts";
import { log } from "./log.ts";
import type { AddressMatcher } from "./net/cidr.ts";
import type { Access, AccessStage, RouteInfo } from "./plugins/types.ts";
import { withoutCookies } from "./plugins/credentials.ts";
import { type ForwardTarget, removeQueryParams } from "./proxy/forward.ts";
import { timedBody } from "./proxy/stream.ts";
import type { PickContext } from "./proxy/balance.ts";
import { forwardWithFailover, type RetryPolicy } from "./proxy/retry.ts";
import { wantsWebSocket } from "./proxy/websocket.ts";
import { proxyWebSocketWithFailover } from "./proxy/ws-failover.ts";
import { backendRequestHeaders, declaredLength } from "./proxy/headers.ts";
import { joinPath, stripPrefix } from "./proxy/url.ts";
import { createContext, type RequestContext } from "./request.ts";
import { ambiguity, type Router } from "./router/router.ts";
import type { ConnInfo } from "./runtime/types.ts";
import { metrics, type RouteMetrics } from "./monitoring/metrics.ts";
import type { RequestRecord } from "./monitoring/observe.ts";
import { requestIdFor } from "./monitoring/request-id.ts";
import { traceHeaders } from "./monitoring/trace.ts";

export interface CompiledRoute extends RouteInfo {
  readonly stages: readonly AccessStage[];
  /** Throws 503 ERR_NO_HEALTHY_TARGET when no target may be called (proxy/retry.ts). */
  readonly pickTarget: (ctx?: PickContext | null, tried?: ReadonlySet<ForwardTarget> | null) => ForwardTarget;
  /** backend.client retries; null: none (the fast path). */
  readonly retry: RetryPolicy | null;
  readonly stripPath: boolean;
  readonly root: string;
  readonly timeoutMs: number;
  readonly preserveHost: boolean;
  readonly maxBodySize: number;
  /** This route's counters (src/monitoring/metrics.ts), made at compile time. */
  readonly metrics?: RouteMetrics;
  /** backend.client.idleTimeout: a WebSocket pair or a response body silent this long is cut. */
  readonly idleTimeoutMs: number;
  /** backend.client.callAndStreamTimeout: a whole call, body included (0: none). */
  readonly streamTimeoutMs: number;
}

export interface Sink {
  matches(ctx: RequestContext): boolean;
  handle(ctx: RequestContext): Promise<Response>;
}

export interface HandlerParts {
  router: Router<CompiledRoute>;
  sinks: readonly Sink[];
  trustedProxies: AddressMatcher;
  clock: () => number;
  /** assertedHeaderSet() of every header some route sets: removed from every client request. */
  assertedHeaders: ReadonlySet<string>;
}

const NO_BODY = new Set(["GET", "HEAD"]);
async function proxyRoute(ctx: RequestContext, route: CompiledRoute, prefix: string, asserted: ReadonlySet<string>, declared: number | null, rec: RequestRecord | undefined): Promise<Response> {
  const startedAt = performance.now();
  const access: Access = { apikey: null, wipeHeaders: null, wipeQuery: null, wipeCookies: null, setHeaders: [], responseHeaders: [] };
  try {
    for (const stage of route.stages) {
      const pending = stage(ctx, route, access);
      if (pending) await pending;
    }
  } finally {
    // Known even when a later check refuses the key (read-only, quota): the access line says whose.
    if (rec !== undefined && access.apikey !== null) rec.clientId = access.apikey.clientId;
  }
  const target = route.pickTarget(ctx);
  if (rec !== undefined) rec.target = `${target.hostname}:${target.port}`;
  const rest = route.stripPath ? stripPrefix(ctx.path, prefix) : ctx.path;
  const headers = backendRequestHeaders(
    ctx.req.headers,
    { clientIp: ctx.info.remoteAddress, trusted: ctx.trusted, secure: ctx.secure, host: ctx.rawHost },
    access.wipeHeaders,
    access.setHeaders.length ? access.setHeaders : null,
    // Every header any route asserts, so a backend shared by open and protected routes
    // cannot be fooled.
    asserted,
  );
  // Gateway-set (their client spellings are asserted: wiped above): the request id, and the
  // gateway's span of the W3C trace (src/monitoring/trace.ts).
  headers.set("x-request-id", rec?.requestId ?? requestIdFor(ctx.req.headers.get("x-request-id")));
  const trace = traceHeaders(ctx.req.headers.get("traceparent"), ctx.req.headers.get("tracestate"));
  headers.set("traceparent", trace.traceparent);
  if (trace.tracestate !== null) headers.set("tracestate", trace.tracestate);
  // RFC 9112 §6.3: a list of one repeated length ("5, 5") goes on as that one length.
  if (declared !== null) headers.set("content-length", String(declared));
  if (access.wipeCookies !== null) {
    const cookie = headers.get("cookie");
    if (cookie) {
      const kept = withoutCookies(cookie, access.wipeCookies);
      if (kept === null) headers.delete("cookie");
      else headers.set("cookie", kept);
    }
  }
  if (wantsWebSocket(ctx.req)) {
    // A listener that cannot take the connection over: say so rather than proxy the handshake as a plain GET.
    if (ctx.info.upgrade === undefined) throw new GatewayError(501, "ERR_WEBSOCKET_UNSUPPORTED", "WebSocket is not supported by this listener");
    const search = access.wipeQuery ? removeQueryParams(ctx.search, access.wipeQuery) : ctx.search;
    return proxyWebSocketWithFailover(ctx.req, route, ctx, {
      target,
      preserveHost: route.preserveHost,
      pathAndQuery: joinPath(route.root, rest) + search,
      headers,
      hostHeader: route.preserveHost ? ctx.rawHost : target.hostHeader,
      timeoutMs: route.timeoutMs,
      idleTimeoutMs: route.idleTimeoutMs,
      responseHeaders: access.responseHeaders,
      signal: ctx.req.signal,
      upgrade: ctx.info.upgrade,
    });
  }
  let body: ReadableStream<Uint8Array> | null = NO_BODY.has(ctx.method) ? null : ctx.req.body;
  let tooLarge = false;
  if (body) {
    if (declared !== null) {
      if (declared > route.maxBodySize) throw payloadTooLarge(route.maxBodySize);
    } else {
      // Chunked upload: count as it streams and cut it at the limit.
      let seen = 0;
      const limit = route.maxBodySize;
      body = body.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            seen += chunk.byteLength;
            if (rec !== undefined) rec.bytesIn = seen;
            if (seen > limit) {
              tooLarge = true;
              controller.error(payloadTooLarge(limit));
            } else controller.enqueue(chunk);
          },
        }),
      );
    }
  }
  const res = await forwardWithFailover(route, ctx, target, {
    path: joinPath(route.root, rest),
    search: ctx.search,
    wipeQuery: access.wipeQuery,
    headers,
    preserveHost: route.preserveHost,
    clientHost: ctx.rawHost,
    method: ctx.method,
    body,
    timeoutMs: route.timeoutMs,
    signal: ctx.req.signal,
    timing: rec,
  }).catch((e: unknown) => {
    throw tooLarge ? payloadTooLarge(route.maxBodySize) : e;
  });
  for (const [k, v] of access.responseHeaders) res.headers.set(k, v);
  if (rec !== undefined) rec.streamed = true;
  return route.idleTimeoutMs > 0 || route.streamTimeoutMs > 0 ? timedBody(res, route.idleTimeoutMs, route.streamTimeoutMs, startedAt, rec?.requestId) : res;
}

function payloadTooLarge(limit: number): GatewayError {
  return new GatewayError(413, "ERR_PAYLOAD_TOO_LARGE", `Request body too large (limit ${limit} bytes)`);
}

export function renderError(e: unknown, ctx: { method: string; path: string; host: string } | null, requestId?: string): Response {
  if (e instanceof GatewayError) {
    const cause = e.cause instanceof Error ? e.cause.message : undefined;
    // A client that left is no failure of the gateway or a backend: 499 (nginx's "client closed
    // request") for the record, at debug. A refusal under load is expected behaviour: warn.
    if (e.status === 499) log("debug", "request.client_closed", { code: e.code, status: 499, requestId, host: ctx?.host, path: ctx?.path, cause });
    else if (e.code === "ERR_UPSTREAM_BUSY") log("warn", "request.refused", { code: e.code, status: e.status, requestId, host: ctx?.host, path: ctx?.path, cause });
    else if (e.status >= 500) log("error", "request.failed", { code: e.code, status: e.status, requestId, host: ctx?.host, path: ctx?.path, cause });
    return errorResponse(e, ctx?.method);
  }
  log("error", "request.crashed", { requestId, host: ctx?.host, path: ctx?.path, cause: e instanceof Error ? e.message : String(e) });
  return errorResponse(new GatewayError(500, "ERR_INTERNAL", "Internal gateway error"), ctx?.method);
}

export function createHandler(parts: HandlerParts): (req: Request, info: ConnInfo, rec?: RequestRecord) => Promise<Response> {
  const { router, sinks, trustedProxies, clock, assertedHeaders } = parts;
  return async (req, info, rec) => {
    let ctx: RequestContext | null = null;
    try {
      ctx = createContext(req, info, trustedProxies, clock(), rec?.requestId ?? null);
      if (rec !== undefined) {
        rec.clientIp = ctx.clientIp;
        rec.path = ctx.path;
      }
      // (The OAuth sink answers a bad Host in its own RFC 6749 shape.)
      for (const sink of sinks) {
        if (sink.matches(ctx)) {
          if (rec !== undefined) rec.sink = true;
          return await sink.handle(ctx);
        }
      }
      // Body framing the listener let through but a backend could read otherwise: 400 here.
      const declared = declaredLength(req.headers);
      // RFC 9112 §3.2: a request with more than one Host field (seen here joined by a comma) or an
      // invalid one gets 400, never a guess at which host was meant.
      // Userinfo in an absolute-form target's authority is an error too (RFC 9110 §4.2.4).
      if (ctx.rawHost.includes(",") || ctx.rawHost.includes("@") || /\s/.test(ctx.rawHost)) throw new GatewayError(400, "ERR_BAD_REQUEST", "Invalid Host header");
      // A path with no canonical form is refused, never guessed at (router/path.ts).
      if (ctx.pathProblem !== null) throw new GatewayError(400, "ERR_BAD_REQUEST", ctx.pathProblem);
      // TRACE echoes the request, credentials included, back to the caller (cross-site
      // tracing); CONNECT would turn the gateway into an open tunnel. Neither is proxied.
      if (ctx.method === "TRACE" || ctx.method === "CONNECT") throw new GatewayError(405, "ERR_METHOD_NOT_ALLOWED", "Method not allowed");
      const m = router.match(ctx.host, ctx.path, ctx.method);
      if (m === null) throw new GatewayError(404, "ERR_ROUTE_NOT_FOUND", "No route found");
      if (m.kind === "method") throw new GatewayError(405, "ERR_METHOD_NOT_ALLOWED", "Method not allowed on this route", { allow: m.allow.join(", ") });
      if (rec !== undefined) rec.route = m.route.metrics ?? metrics.route(m.route.id);
      const ambiguous = ambiguity(router, ctx.host, ctx.path, ctx.method, m);
      if (ambiguous !== null) throw new GatewayError(400, "ERR_BAD_REQUEST", ambiguous);
      return await proxyRoute(ctx, m.route, m.prefix, assertedHeaders, declared, rec);
    } catch (e) {
      if (rec !== undefined) rec.error = e instanceof GatewayError ? e.code : "ERR_INTERNAL";
      return renderError(e, ctx, rec?.requestId);
    }
  };
}
