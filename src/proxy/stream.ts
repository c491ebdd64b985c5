// Deadlines on a response body as it streams (server-sent events, long polls, downloads):
// backend.client.idleTimeout between chunks (counted only while the gateway waits for the
// backend, not while a slow client reads) and backend.client.callAndStreamTimeout for the whole
// call. Chunks are relayed as they arrive (highWaterMark 0: nothing is read ahead or held).

import { GatewayError } from "../errors.ts";
import { log } from "../log.ts";
import { READ_WHOLE_MAX } from "./forward.ts";

export function timedBody(res: Response, idleMs: number, totalMs: number, startedAt: number, requestId?: string): Response {
  const body = res.body;
  if (body === null) return res;
  const declared = res.headers.get("content-length");
  // Read whole by forward() already: nothing left to time.
  if (declared !== null && Number(declared) <= READ_WHOLE_MAX) return res;
  const idle = idleMs > 0 && Number.isFinite(idleMs) ? idleMs : Infinity;
  const total = totalMs > 0 && Number.isFinite(totalMs) ? totalMs : Infinity;
  if (idle === Infinity && total === Infinity) return res;
  const reader = body.getReader();
  // performance.now() when the current read began, or -1 while none is pending.
  let waitingSince = -1;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let done = false;
  let ctl: ReadableStreamDefaultController<Uint8Array>;
  const stop = () => {
    done = true;
    if (timer !== undefined) clearTimeout(timer);
  };
  const cut = (why: "idle" | "total") => {
    stop();
    const cause = new DOMException(why === "idle" ? "backend.client.idleTimeout between chunks" : "backend.client.callAndStreamTimeout", "TimeoutError");
    // A GatewayError: the listeners treat it as an answer already given (logged here, once, at
    // warn), not as a crash of the gateway.
    const err = new GatewayError(504, "ERR_UPSTREAM_TIMEOUT", "backend stream timed out", {}, { cause });
    log("warn", "request.stream_timeout", { requestId, timeout: why === "idle" ? "idleTimeout" : "callAndStreamTimeout" });
    ctl.error(err);
    void reader.cancel(err).catch(() => {});
  };
  const check = () => {
    if (done) return;
    const now = performance.now();
    const leftTotal = startedAt + total - now;
    if (leftTotal <= 0) return cut("total");
    const leftIdle = waitingSince < 0 ? idle : waitingSince + idle - now;
    if (leftIdle <= 0) return cut("idle");
    timer = setTimeout(check, Math.max(1, Math.min(leftTotal, leftIdle)));
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        ctl = controller;
        check();
      },
      async pull(controller) {
        waitingSince = performance.now();
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await reader.read();
        } catch (e) {
          if (!done) {
            stop();
            throw e;
          }
          return;
        }
        waitingSince = -1;
        if (done) return;
        if (r.done) {
          stop();
          controller.close();
        } else controller.enqueue(r.value);
      },
      cancel(reason) {
        stop();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(stream, { status: res.status, statusText: res.statusText, headers: res.headers });
}
