// Calls one backend target and turns its answer into the client response. Bodies are streamed
// both ways (never buffered beyond one small response); the timeout covers the wait for a free
// connection and then for the backend's response headers, like Otoroshi's call_timeout;
// failures become GatewayErrors carrying the original error. A failure the client caused (it
// left, or its upload broke off) is the client's: 499 or 400, never a 502 blaming the backend.

import { deadline } from "./deadlines.ts";
import { GatewayError, RequestBodyError } from "../errors.ts";
import { clientGone, releasing, type TargetLimiter } from "./limiter.ts";
import type { UpstreamFetch, UpstreamTls } from "../runtime/types.ts";
import { clientResponseHeaders, stripResponseHeadersInPlace } from "./headers.ts";
import type { TargetState } from "./health.ts";
import type { UpstreamInit } from "../runtime/types.ts";

export interface ForwardTarget {
  hostname: string;
  port: number;
  tls: boolean;
  weight: number;
  fetch: UpstreamFetch;
  /** Precomputed targetOrigin(). */
  origin: string;
  /** Precomputed hostHeader(). */
  hostHeader: string;
  /** Calls-in-flight limit of this target (compile.ts sets one on every route); absent: none. */
  limiter?: TargetLimiter;
  /** The target's tlsConfig (WebSocket calls open their own connection with it). */
  upstreamTls?: UpstreamTls;
  /** Only called when every other target is unhealthy or failed (backend.targets[].backup). */
  backup?: boolean;
  /** Health and breaker state, kept across reloads (proxy/health.ts); absent: always healthy. */
  health?: TargetState;
}

export interface ForwardOptions {
  target: ForwardTarget;
  /** Already stripped/joined path, without the query. */
  path: string;
  /** "?a=1" or "": preserved byte for byte, except `wipeQuery` params removed. */
  search: string;
  /** Query parameter names to remove (credentials passed in the query). */
  wipeQuery?: ReadonlySet<string> | null;
  /** From backendRequestHeaders(); forward() sets `host` on it. */
  headers: Headers;
  /** true: send the client's Host; false: the target's hostHeader. */
  preserveHost: boolean;
  clientHost: string;
  method: string;
  /** Streamed, never buffered. */
  body: ReadableStream<Uint8Array> | null;
  /** Time until the backend's response headers arrive → 504 (a wait for a free connection
   * counts too, → 503). <= 0 or non-finite: none. */
  timeoutMs: number;
  /** Client went away → abort the upstream call (and its body streams). */
  signal?: AbortSignal;
  /** backend.client.connectionTimeout, passed to the runtime's client (UpstreamInit). */
  connectTimeoutMs?: number;
  /** For the access log: the target called ("host:port"; with failover, the last one tried) and
   * performance.now() when its response headers arrived (upstreamMs). */
  timing?: { upstreamAt: number; target: string | null };
}

const MSG_REFUSED = "Something went wrong, the connection to backend service was refused, you should try later. Thanks for your understanding";
const MSG_TIMEOUT = "Something went wrong, the backend service does not respond quickly enough, you should try later. Thanks for your understanding";
const MSG_ERROR = "Something went wrong, you should try later. Thanks for your understanding";

// Connection-refused shapes seen from fetch implementations: an error with code
// "ECONNREFUSED" and "Unable to connect" in its message, or a TypeError("fetch failed") whose
// cause says "Connection refused (os error 111)"; older clients used code "ConnectionRefused".
const REFUSED_TEXT = /ECONNREFUSED|ConnectionRefused|connection refused|unable to connect/i;

function isRefused(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && typeof e === "object" && e !== null; depth++) {
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    if (code === "ECONNREFUSED" || code === "ConnectionRefused" || name === "ConnectionRefused") return true;
    if (typeof message === "string" && REFUSED_TEXT.test(message)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export function upstreamError(err: unknown, timedOut: boolean): GatewayError {
  if (timedOut) return new GatewayError(504, "ERR_UPSTREAM_TIMEOUT", MSG_TIMEOUT, {}, { cause: err });
  if (isRefused(err)) return new GatewayError(502, "ERR_UPSTREAM_REFUSED", MSG_REFUSED, {}, { cause: err });
  // TLS failures, DNS failures, resets: all "try later" for the client; the cause tells the logs which.
  return new GatewayError(502, "ERR_UPSTREAM_ERROR", MSG_ERROR, {}, { cause: err });
}

/** An upload that broke off (RFC 9112 §8, incomplete message) or had bad chunked framing (§7.1). */
function badUpload(err: unknown): GatewayError {
  return new GatewayError(400, "ERR_BAD_REQUEST", "Incomplete or malformed request body", {}, { cause: err });
}

/** The RequestBodyError in `err`'s cause chain: reading the client's body is what failed. */
function uploadFailure(err: unknown): RequestBodyError | null {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && typeof e === "object" && e !== null; depth++) {
    if (e instanceof RequestBodyError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/**
 * Who failed: a client that left (its request signal aborted; nobody reads an answer: 499 as
 * nginx records it), the client's upload (broke off or malformed: 400; or the refusal that cut
 * it, e.g. a 413), or else the backend.
 */
export function callFailed(err: unknown, timedOut: boolean, client: AbortSignal | undefined): GatewayError {
  if (client?.aborted) return clientGone(client.reason ?? err);
  const upload = uploadFailure(err);
  if (upload !== null) return upload.cause instanceof GatewayError ? upload.cause : badUpload(upload.cause);
  return upstreamError(err, timedOut);
}

/**
 * Removes the named parameters from a query string, keeping every other byte as received
 * (no re-encoding, no reordering: W29). Names are compared after form-decoding.
 */
export function removeQueryParams(search: string, names: ReadonlySet<string>): string {
  if (search.length <= 1 || names.size === 0) return search;
  const parts = search.slice(1).split("&");
  const kept: string[] = [];
  for (const part of parts) {
    const eq = part.indexOf("=");
    let name = eq < 0 ? part : part.slice(0, eq);
    if (name.includes("%") || name.includes("+")) {
      try {
        name = decodeURIComponent(name.replaceAll("+", " "));
      } catch {
        // Malformed escapes cannot name a credential parameter: keep the part as it is.
      }
    }
    if (!names.has(name)) kept.push(part);
  }
  if (kept.length === parts.length) return search;
  return kept.length === 0 ? "" : "?" + kept.join("&");
}

function hasNoBody(method: string, status: number): boolean {
  // RFC 9110 §9.3.2 (HEAD), §15.3.5 (204), §15.4.5 (304).
  return method === "HEAD" || status === 204 || status === 304;
}

/** A backend body with a declared length up to this is read whole before being relayed (see
 * relay()): the stream deadlines and the access log rely on it being done at once. */
export const READ_WHOLE_MAX = 16 * 1024;

let inPlace: boolean | undefined;

/** The client's copy of the backend's headers: the backend's own object when the runtime allows. */
function responseHeaders(upstream: Response): Headers {
  if (inPlace !== false) {
    // Saves a Headers copy per request (~2–4 µs on Bun, bench/ablation.sh). Runtimes whose
    // fetch responses have immutable headers (as the Fetch standard guards them) are detected
    // once and take the copying path.
    try {
      stripResponseHeadersInPlace(upstream.headers);
      inPlace = true;
      return upstream.headers;
    } catch {
      inPlace = false;
    }
  }
  return clientResponseHeaders(upstream.headers);
}

export async function forward(opts: ForwardOptions): Promise<Response> {
  const { target, method, headers } = opts;
  const search = opts.wipeQuery ? removeQueryParams(opts.search, opts.wipeQuery) : opts.search;
  const url = target.origin + opts.path + search;
  headers.set("host", opts.preserveHost ? opts.clientHost : target.hostHeader);

  const clientSignal = opts.signal;
  if (clientSignal?.aborted) throw clientGone(clientSignal.reason);

  let timeoutMs = opts.timeoutMs;
  const limiter = target.limiter;
  if (limiter !== undefined && !limiter.tryAcquire()) {
    const queuedAt = performance.now();
    await limiter.acquire(timeoutMs, clientSignal);
    // Granted a slot, but the client left between the grant and now: nothing to call.
    if (clientSignal?.aborted) {
      limiter.release();
      throw clientGone(clientSignal.reason);
    }
    // One budget for the whole wait: time spent queued is not given again to the headers.
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) timeoutMs = Math.max(1, timeoutMs - (performance.now() - queuedAt));
  }
  let held = limiter !== undefined;
  const release = () => {
    if (held) {
      held = false;
      limiter!.release();
    }
  };

  let body = opts.body;
  if (body !== null && (method === "GET" || method === "HEAD")) {
    // Fetch cannot send content with GET/HEAD (RFC 9110 §9.3.1: it has no defined meaning);
    // drop it together with its framing so the backend does not wait for bytes that never come.
    body = null;
    headers.delete("content-length");
  }
  const controller = new AbortController();
  if (clientSignal) {
    // Stays attached after the headers arrive so a client leaving mid-body stops the upstream too.
    clientSignal.addEventListener("abort", () => controller.abort(clientSignal.reason), { once: true });
  }
  let timedOut = false;
  const cancelTimeout = timeoutMs > 0 && Number.isFinite(timeoutMs)
    ? deadline(timeoutMs, () => {
      timedOut = true;
      controller.abort(new DOMException("backend response headers timed out", "TimeoutError"));
    })
    : undefined;

  const init: UpstreamInit & { duplex?: "half" } = {
    method,
    headers,
    redirect: "manual",
    signal: controller.signal,
  };
  if (opts.connectTimeoutMs !== undefined) init.connectTimeoutMs = opts.connectTimeoutMs;
  if (body !== null) {
    init.body = body;
    // Required by the Fetch standard for a streamed request body.
    init.duplex = "half";
  }

  let upstream: Response;
  if (opts.timing !== undefined) opts.timing.target = `${target.hostname}:${target.port}`;
  try {
    upstream = await target.fetch(url, init);
    if (opts.timing !== undefined) opts.timing.upstreamAt = performance.now();
  } catch (err) {
    release();
    throw callFailed(err, timedOut, clientSignal);
  } finally {
    if (cancelTimeout !== undefined) cancelTimeout();
  }

  const status = upstream.status;
  if (status < 200 || status > 599) {
    // 1xx other than the interim ones the client consumed, or a non-HTTP status: not relayable.
    void upstream.body?.cancel().catch(() => {});
    release();
    throw upstreamError(new Error(`backend answered with status ${status}`), false);
  }
  if (hasNoBody(method, status) || upstream.body === null) {
    void upstream.body?.cancel().catch(() => {});
    release();
    return new Response(null, { status, statusText: upstream.statusText, headers: responseHeaders(upstream) });
  }
  if (limiter === undefined) {
    if (inPlace !== false) {
      responseHeaders(upstream);
      if (inPlace) return upstream;
    }
    return new Response(upstream.body, { status, statusText: upstream.statusText, headers: clientResponseHeaders(upstream.headers) });
  }
  // The connection slot is the backend's until its body has ended. A small declared body is
  // read whole, then relayed: as cheap as relaying the backend's Response itself, where
  // watching a stream chunk by chunk doubles the proxy's CPU per request (measured on Bun).
  const declared = upstream.headers.get("content-length");
  if (declared !== null && Number(declared) <= READ_WHOLE_MAX) {
    let bytes: ArrayBuffer;
    try {
      bytes = await upstream.arrayBuffer();
    } catch (err) {
      throw callFailed(err, false, clientSignal);
    } finally {
      release();
    }
    return new Response(bytes, { status, statusText: upstream.statusText, headers: responseHeaders(upstream) });
  }
  return new Response(releasing(upstream.body, release), { status, statusText: upstream.statusText, headers: responseHeaders(upstream) });
}
