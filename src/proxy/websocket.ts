// WebSocket proxying (RFC 6455): the route's stages have run as for any call; here the gateway
// opens the backend's WebSocket FIRST, so a backend that refuses the upgrade has its answer
// relayed as is, and only then upgrades the client. Messages are relayed whole (§5.4 lets an
// intermediary re-fragment); pings and pongs are relayed too (the runtime answers the client's
// pings, the gateway the backend's: §5.5.2; an extra unsolicited pong is allowed: §5.5.3).
// Backpressure: a side whose queue is over QUEUE_BOUND stops the other side from being read.

import type { Duplex } from "node:stream";
import { GatewayError } from "../errors.ts";
import { log } from "../log.ts";
import { gauges } from "../monitoring/gauges.ts";
import type { ClientSocket, SocketEvents } from "../runtime/types.ts";
import { callFailed } from "./forward.ts";
import type { ForwardTarget } from "./forward.ts";
import { clientGone, releasing } from "./limiter.ts";
import { badHandshake, handshake, HandshakeTimeout } from "./ws-backend.ts";
import { closePayload, encodeFrame, FrameReader, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, sendableCloseCode } from "./ws-frames.ts";

/** Largest message relayed either way (the listeners are set to the same): 1009 beyond. */
export const MAX_MESSAGE = 64 * 1024 * 1024;
/** Bytes queued towards one side before the other side is no longer read (docs/operations.md). */
export const QUEUE_BOUND = 1024 * 1024;
/** Where the client cannot be paused (Deno): queued towards the backend beyond this, 1008. */
const HARD_BOUND = MAX_MESSAGE + QUEUE_BOUND;
/** How long the backend gets to answer our close frame before its connection is cut. */
const CLOSE_WAIT_MS = 5_000;

export interface WebSocketCall {
  target: ForwardTarget;
  pathAndQuery: string;
  /** Backend request headers from backendRequestHeaders() (Host not yet set). */
  headers: Headers;
  hostHeader: string;
  timeoutMs: number;
  idleTimeoutMs: number;
  /** Headers the route's stages add to the answer (quota counters): on the 101 or the refusal. */
  responseHeaders: readonly (readonly [string, string])[];
  signal: AbortSignal;
  upgrade: (headers: Headers, events: SocketEvents) => Response;
}

/** The client asks for a WebSocket (RFC 6455 §4.2.1: GET, Upgrade: websocket). */
export function wantsWebSocket(req: Request): boolean {
  const up = req.headers.get("upgrade");
  return up !== null && up.toLowerCase() === "websocket";
}

const open = new Set<Pair>();

/** Graceful shutdown: every open pair closes with 1001 (§7.4.1 "going away"). */
export function closeAllWebSockets(reason = "server shutting down"): void {
  for (const p of [...open]) p.shut(1001, reason);
}

export async function proxyWebSocket(req: Request, call: WebSocketCall): Promise<Response> {
  if (req.method !== "GET") throw badHandshake("A WebSocket upgrade must be a GET");
  if (req.headers.get("sec-websocket-version") !== "13") throw badHandshake("Unsupported Sec-WebSocket-Version", true);
  const key = req.headers.get("sec-websocket-key");
  if (key === null || !/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) throw badHandshake("Invalid Sec-WebSocket-Key");
  const { target, signal } = call;
  const limiter = target.limiter;
  // The slot is held for the handshake only: an open WebSocket does not count against
  // backend.client.maxConnections (docs/operations.md).
  if (limiter !== undefined && !limiter.tryAcquire()) {
    await limiter.acquire(call.timeoutMs, signal);
    if (signal.aborted) {
      limiter.release();
      throw clientGone(signal.reason);
    }
  }
  let held = limiter !== undefined;
  const release = () => void (held && ((held = false), limiter!.release()));
  call.headers.set("host", call.hostHeader);
  let result: Awaited<ReturnType<typeof handshake>>;
  try {
    result = await handshake({
      hostname: target.hostname,
      port: target.port,
      tls: target.tls,
      upstreamTls: target.upstreamTls,
      pathAndQuery: call.pathAndQuery,
      headers: call.headers,
      offered: req.headers.get("sec-websocket-protocol"),
      timeoutMs: call.timeoutMs,
      signal,
    });
  } catch (err) {
    release();
    const e = callFailed(err, err instanceof HandshakeTimeout, signal);
    // The backend failed the handshake: it counts against the target's breaker as an HTTP call would.
    if (e.code === "ERR_UPSTREAM_REFUSED" || e.code === "ERR_UPSTREAM_ERROR" || e.code === "ERR_UPSTREAM_TIMEOUT") target.health?.failure();
    throw e;
  }
  target.health?.success();
  if (result.kind === "refused") {
    const { response } = result;
    for (const [k, v] of call.responseHeaders) response.headers.set(k, v);
    if (response.body === null) {
      release();
      return response;
    }
    return new Response(releasing(response.body, release), { status: response.status, statusText: response.statusText, headers: response.headers });
  }
  release();
  const headers = new Headers();
  if (result.protocol !== null) headers.set("sec-websocket-protocol", result.protocol);
  for (const c of result.setCookies) headers.append("set-cookie", c);
  for (const [k, v] of call.responseHeaders) headers.set(k, v);
  // The handshake's request id (set on the backend headers by the handler) names the pair in logs.
  const pair = new Pair(result.socket, result.head, call.idleTimeoutMs, call.headers.get("x-request-id"));
  try {
    return call.upgrade(headers, pair);
  } catch (err) {
    result.socket.destroy();
    throw new GatewayError(400, "ERR_BAD_REQUEST", "WebSocket upgrade failed", {}, { cause: err });
  }
}

/** One client socket and its backend socket. Implements the adapter's SocketEvents. */
class Pair implements SocketEvents {
  private client: ClientSocket | null = null;
  private closed = false;
  private last = performance.now();
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly reader: FrameReader;
  private readonly backend: Duplex;
  private readonly head: Uint8Array;
  private readonly idleMs: number;
  private readonly requestId: string | null;

  constructor(backend: Duplex, head: Uint8Array, idleMs: number, requestId: string | null) {
    this.backend = backend;
    this.head = head;
    this.idleMs = idleMs;
    this.requestId = requestId;
    backend.pause();
    (backend as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
    this.reader = new FrameReader(
      {
        message: (data) => this.toClient(data),
        control: (kind, data) => {
          this.last = performance.now();
          if (kind === "ping") this.write(OP_PONG, data);
          this.client?.ping(data);
        },
        close: (code, reason) => this.shut(code, reason, true),
        fail: (code, reason) => {
          log("warn", "websocket.backend_protocol_error", { requestId: this.requestId, code, reason });
          this.write(OP_CLOSE, closePayload(code, reason));
          this.shut(1011, "backend protocol error");
        },
      },
      MAX_MESSAGE,
    );
    // Until the client is upgraded, a failed backend just goes away.
    backend.on("error", () => this.shut(1011, "backend connection failed"));
    backend.on("close", () => this.shut(1011, "backend connection lost"));
  }

  open(socket: ClientSocket): void {
    this.client = socket;
    if (this.closed) return void socket.close(1011, "backend connection lost");
    open.add(this);
    gauges.websocketOpened();
    if (this.head.byteLength > 0) this.reader.push(this.head);
    this.backend.on("data", (chunk: Uint8Array) => this.reader.push(chunk));
    this.backend.resume();
    if (this.idleMs > 0 && Number.isFinite(this.idleMs)) this.armIdle(this.idleMs);
  }

  /** One timer per pair, re-armed only when it fires: a message costs a clock read, not a timer. */
  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      const quiet = performance.now() - this.last;
      if (quiet >= this.idleMs) this.shut(1001, "idle timeout");
      else this.armIdle(this.idleMs - quiet);
    }, ms);
    (this.idleTimer as { unref?: () => void }).unref?.();
  }

  private toClient(data: string | Uint8Array): void {
    this.last = performance.now();
    const c = this.client;
    if (c === null || this.closed) return;
    c.send(data);
    if (c.bufferedAmount > QUEUE_BOUND) {
      this.backend.pause();
      c.whenBelow(QUEUE_BOUND, () => {
        if (!this.closed) this.backend.resume();
      });
    }
  }

  private write(op: number, data: string | Uint8Array): void {
    if (this.backend.destroyed || !this.backend.writable) return;
    const parts = encodeFrame(op, data);
    if (parts.length === 1) this.backend.write(parts[0]);
    else {
      this.backend.cork();
      for (const p of parts) this.backend.write(p);
      this.backend.uncork();
    }
  }

  message(data: string | Uint8Array): void {
    this.last = performance.now();
    if (this.closed) return;
    this.write(typeof data === "string" ? OP_TEXT : OP_BINARY, data);
    const queued = this.backend.writableLength;
    if (queued <= QUEUE_BOUND) return;
    if (this.client?.pause()) this.backend.once("drain", () => this.client?.resume());
    else if (queued > HARD_BOUND) this.shut(1008, "backend too slow");
  }

  control(kind: "ping" | "pong", data: Uint8Array): void {
    this.last = performance.now();
    if (!this.closed) this.write(kind === "ping" ? OP_PING : OP_PONG, data);
  }

  /** The client's close (or lost connection): relayed to the backend. */
  close(code: number, reason: string): void {
    this.shut(code === 1006 ? 1001 : code, code === 1006 ? "client went away" : reason, false, true);
  }

  /**
   * Ends both sides once. `fromBackend`: the backend sent a close frame (echo it, §5.5.1);
   * `fromClient`: the client is already closed.
   */
  shut(code: number, reason: string, fromBackend = false, fromClient = false): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    if (open.delete(this)) gauges.websocketClosed();
    const b = this.backend;
    if (!b.destroyed) {
      this.write(OP_CLOSE, closePayload(fromBackend ? code : sendableCloseCode(code) ? code : 1000, reason));
      if (fromBackend) b.end();
      else {
        // §7.1.1: the server closes the TCP connection first; give it a moment to.
        b.resume();
        b.end();
        const cut = setTimeout(() => b.destroy(), CLOSE_WAIT_MS);
        (cut as { unref?: () => void }).unref?.();
        b.once("close", () => clearTimeout(cut));
      }
    }
    if (!fromClient && this.client !== null) {
      if (code === 1005) this.client.close();
      else this.client.close(sendableCloseCode(code) ? code : 1011, reason);
    }
  }
}
