// Runtime-neutral pieces of the listeners: the connection deadlines, SNI certificate choice,
// peer addresses, the request body limit and the last-resort error answer.

import { errorResponse, GatewayError } from "../errors.ts";
import { log } from "../log.ts";
import type { TlsCert } from "./types.ts";

/**
 * A request head must be complete within this long after the connection opened, or sooner when
 * server.idleTimeout is shorter. Bun's listener has the same fixed 10 s deadline (uWebSockets),
 * which it checks every 4 s, so a slow head is cut after 10–14 s there.
 */
export const HEADER_TIMEOUT_MS = 10_000;

/** The deadlines of a listener with this idle timeout, and how often they are checked. */
export function connectionTimeouts(idleTimeoutSeconds = 30): { headerMs: number; idleMs: number; checkMs: number } {
  const idleMs = Math.max(1, idleTimeoutSeconds) * 1000;
  const headerMs = Math.min(HEADER_TIMEOUT_MS, idleMs);
  return { headerMs, idleMs, checkMs: Math.max(250, Math.min(1000, headerMs / 4)) };
}

/** Picks a certificate for an SNI name: exact, then "*.<parent>" (one label), then the first. */
export function certPicker<T>(certs: TlsCert[], make: (cert: TlsCert) => T): (sni: string) => T {
  const made = certs.map(make);
  const byName = new Map<string, T>();
  certs.forEach((c, i) => {
    for (const raw of c.serverNames) {
      const name = raw.toLowerCase().replace(/\.$/, "");
      if (!byName.has(name)) byName.set(name, made[i]);
    }
  });
  return (sni) => {
    const name = sni.toLowerCase().replace(/\.$/, "");
    const dot = name.indexOf(".");
    return byName.get(name) ?? (dot > 0 ? byName.get("*" + name.slice(dot)) : undefined) ?? made[0];
  };
}

/** "::ffff:1.2.3.4" (an IPv4 peer on a dual-stack socket) → "1.2.3.4". */
export function normaliseAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped ? mapped[1] : address;
}

export function internalError(error: unknown): Response {
  // A refusal that escaped the handler (e.g. the body limit below) keeps its status.
  if (error instanceof GatewayError) return errorResponse(error);
  // Last resort: the gateway renders its own errors, so reaching this is a bug worth a log
  // line; the client gets the Otoroshi error shape and never the stack.
  log("error", "http.unhandled_error", { error });
  return errorResponse(new GatewayError(500, "ERR_INTERNAL", "internal error"));
}

const tooLarge = () => new GatewayError(413, "ERR_PAYLOAD_TOO_LARGE", "payload too large");

/**
 * For a listener without a body limit of its own (Deno's), enforced as Bun does natively: a
 * declared Content-Length over the limit is refused before the handler runs; a chunked body
 * errors the handler's stream once it grows past the limit.
 */
export function limitBody(req: Request, max: number | undefined): Request | Response {
  if (max === undefined || req.body === null) return req;
  const declared = req.headers.get("content-length");
  if (declared !== null) return Number(declared) > max ? errorResponse(tooLarge()) : req;
  let seen = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > max) controller.error(tooLarge());
      else controller.enqueue(chunk);
    },
  });
  return new Request(req, { body: req.body.pipeThrough(counter), duplex: "half" } as RequestInit);
}

/** What the deadlines need of one connection's server (deno-http.ts: one Deno.serveHttp connection). */
export interface ConnectionServer {
  readonly finished: Promise<void>;
  shutdown(): Promise<void>;
}

interface Tracked {
  readonly abort: AbortController;
  server?: ConnectionServer;
  /** Requests being answered (HTTP/2 may have several). */
  busy: number;
  /** performance.now() past which an idle connection is closed. */
  deadline: number;
  /** Being shut down gracefully: aborting it now would throw inside Deno. */
  shutdown: boolean;
}

/**
 * Closes a connection now. Not server.shutdown(): a graceful close waits for a request
 * body the client never finishes, and aborting after it throws. Aborting a connection that is
 * already closing makes Deno report a BadResource from its own abort listener as an uncaught
 * error (it would end the process): that one report, dispatched synchronously, is swallowed.
 */
function abortConnection(c: Tracked): void {
  c.deadline = Infinity;
  if (c.shutdown) return;
  const swallow = (e: ErrorEvent) => {
    if ((e.error as Error | undefined)?.name === "BadResource") e.preventDefault();
  };
  addEventListener("error", swallow);
  try {
    c.abort.abort();
  } finally {
    removeEventListener("error", swallow);
  }
}

/**
 * Deadlines for a listener that has none of its own (Deno's): a connection must complete a
 * request head within headerMs of opening and the next one within idleMs of its last response,
 * or it is closed. One timer checks every connection each checkMs rather than one timer per
 * request (a deadline is then up to checkMs late). A request being answered is never cut.
 */
export class ConnectionDeadlines {
  private readonly connections = new Set<Tracked>();
  private readonly idleMs: number;
  private readonly headerMs: number;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(idleTimeoutSeconds?: number) {
    const { headerMs, idleMs, checkMs } = connectionTimeouts(idleTimeoutSeconds);
    this.headerMs = headerMs;
    this.idleMs = idleMs;
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const c of this.connections) if (c.busy === 0 && now >= c.deadline) abortConnection(c);
    }, checkMs);
  }

  /** A connection just accepted: the signal to serve it with, and its two hooks. */
  add(): { signal: AbortSignal; request(completed: Promise<void>): void; served(server: ConnectionServer): void } {
    const c: Tracked = { abort: new AbortController(), busy: 0, deadline: performance.now() + this.headerMs, shutdown: false };
    const idle = () => {
      if (--c.busy === 0) c.deadline = performance.now() + this.idleMs;
    };
    return {
      signal: c.abort.signal,
      request: (completed) => {
        c.busy++;
        completed.then(idle, idle);
      },
      served: (server) => {
        c.server = server;
        this.connections.add(c);
        const gone = () => void this.connections.delete(c);
        server.finished.then(gone, gone);
      },
    };
  }

  /** Idle connections close now; busy ones once their answers are sent, or now when forced. */
  async stop(force = false): Promise<void> {
    clearInterval(this.timer);
    const open = [...this.connections];
    for (const c of open) {
      if (force || c.busy === 0) abortConnection(c);
      else {
        c.shutdown = true;
        void c.server?.shutdown().catch(() => {});
      }
    }
    await Promise.allSettled(open.map((c) => c.server?.finished));
  }
}
