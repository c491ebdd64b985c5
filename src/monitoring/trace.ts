// W3C Trace Context (https://www.w3.org/TR/trace-context/) for the backend call. The gateway is
// one hop of the trace: the backend always receives a valid `traceparent` whose parent-id is
// the gateway's own span; a valid incoming one keeps its trace-id and flags; anything else
// starts a new trace. `tracestate` is passed on only beside a valid incoming traceparent (§3.3:
// without one, a vendor's state has no trace to belong to).
import { randomFillSync } from "node:crypto";

// §3.2.2: version-traceid-parentid-flags, lower-case hex. A future version may append fields
// after a '-' (§4.3: parse what is known, ignore the rest); version ff is invalid.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "00000000000000000000000000000000";
const ZERO_SPAN = "0000000000000000";

// Random ids from a refilled pool: one system call per 256 span ids, not one per request.
const pool = Buffer.alloc(4096);
let used = pool.length;
function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += bytes;
  return pool.toString("hex", used - bytes, used);
}

function nonZeroHex(bytes: number, zero: string): string {
  for (;;) {
    const h = randomHex(bytes);
    if (h !== zero) return h;
  }
}

export interface TraceHeaders {
  traceparent: string;
  /** The incoming tracestate to pass on, or null. */
  tracestate: string | null;
}

/** The trace id of a valid traceparent value, or null (and its flags). */
export function parseTraceparent(value: string | null): { traceId: string; flags: string } | null {
  if (value === null) return null;
  const v = value.trim();
  const m = TRACEPARENT.exec(v);
  if (m === null) return null;
  const [, version, traceId, parentId, flags, rest] = m;
  if (version === "ff" || traceId === ZERO_TRACE || parentId === ZERO_SPAN) return null;
  // Version 00 has exactly four fields (§3.2.2.1).
  if (version === "00" && rest !== undefined) return null;
  return { traceId: traceId!, flags: flags! };
}

/** The trace headers the backend receives, from the client's (or none). */
export function traceHeaders(traceparent: string | null, tracestate: string | null): TraceHeaders {
  const parsed = parseTraceparent(traceparent);
  const span = nonZeroHex(8, ZERO_SPAN);
  if (parsed === null) return { traceparent: `00-${nonZeroHex(16, ZERO_TRACE)}-${span}-00`, tracestate: null };
  // §3.2.2.5: only the sampled bit is defined in version 00; the other bits are not passed on.
  const flags = (parseInt(parsed.flags, 16) & 1) === 1 ? "01" : "00";
  return { traceparent: `00-${parsed.traceId}-${span}-${flags}`, tracestate: tracestate === null || tracestate.trim() === "" ? null : tracestate };
}
