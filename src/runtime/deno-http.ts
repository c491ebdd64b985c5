// One accepted connection served by Deno.serveHttp (deprecated in Deno 2, still present in 2.9):
// unlike Deno.serve's per-connection engine it leaves an upgraded WebSocket alone when the HTTP
// side of its connection ends, and it exposes the events ConnectionDeadlines needs (a head
// arrived: nextRequest() resolved; the answer was sent: respondWith() settled).

import { internalError } from "./listener.ts";
import type { ConnectionServer } from "./listener.ts";

interface RequestEvent {
  readonly request: Request;
  respondWith(r: Response | Promise<Response>): Promise<void>;
}
interface HttpConn {
  nextRequest(): Promise<RequestEvent | null>;
  close(): void;
}
type ServeHttp = (conn: Deno.Conn) => HttpConn;

/** Handles one request; `signal` aborts when the client leaves; `taken()` marks an upgrade. */
export type ConnHandler = (req: Request, signal: AbortSignal, taken: () => void) => Response | Promise<Response>;

export function serveHttpAvailable(): ServeHttp | undefined {
  const f = (Deno as unknown as { serveHttp?: ServeHttp }).serveHttp;
  return typeof f === "function" ? f.bind(Deno) : undefined;
}

/**
 * Serves `conn` until the client closes it, `signal` aborts (the deadlines), or shutdown() has
 * let the answers in flight finish. serveHttp's own req.signal aborts only when an answer
 * cannot be written, so a client leaving (the connection ending: nextRequest() gives null) is
 * reported to the handler through a signal of the adapter's own.
 */
export function serveConnection(serveHttp: ServeHttp, conn: Deno.Conn, signal: AbortSignal, handler: ConnHandler, request: (completed: Promise<void>) => void): ConnectionServer {
  const http = serveHttp(conn);
  const inflight = new Set<AbortController>();
  let upgraded = false;
  let draining = false;
  const close = () => {
    try {
      http.close();
    } catch {
      // already closed
    }
  };
  // An upgraded connection belongs to its WebSocket (closed by the core), not to the deadlines.
  signal.addEventListener("abort", () => void (upgraded || close()), { once: true });
  const answer = async (ev: RequestEvent, ac: AbortController) => {
    let taken = false;
    let res: Response;
    try {
      res = await handler(ev.request, ac.signal, () => {
        taken = upgraded = true;
      });
    } catch (error) {
      res = internalError(error);
    }
    // From the 101 on, the client leaving is the WebSocket's close event, not an abort.
    if (taken) inflight.delete(ac);
    await ev.respondWith(res);
  };
  const finished = (async () => {
    for (;;) {
      let ev: RequestEvent | null;
      try {
        ev = await http.nextRequest();
      } catch {
        ev = null;
      }
      if (ev === null) break;
      const ac = new AbortController();
      inflight.add(ac);
      let done!: () => void;
      request(new Promise<void>((resolve) => (done = resolve)));
      answer(ev, ac)
        .catch(() => {})
        .finally(() => {
          inflight.delete(ac);
          done();
          if (draining && inflight.size === 0 && !upgraded) close();
        });
    }
    for (const ac of inflight) ac.abort(new DOMException("the client closed the connection", "AbortError"));
    inflight.clear();
  })();
  return {
    finished,
    shutdown() {
      draining = true;
      if (inflight.size === 0 && !upgraded) close();
      return finished;
    },
  };
}
