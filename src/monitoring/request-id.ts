// Request ids: a well-formed incoming X-Request-Id is kept (a proxy in front, or the client,
// already named the request), anything else is replaced. A generated id is a per-process random
// prefix and a counter: unique across processes without a random draw per request (~30 ns here,
// against ~300 ns for crypto.randomUUID(); docs/operations.md).
import { randomBytes } from "node:crypto";

/** The ids the gateway keeps as received: short, and nothing a log or a header could misread. */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

// 48 random bits name this process; the counter names the request within it.
const PREFIX = randomBytes(6).toString("hex") + "-";
let counter = 0;

export function generateRequestId(): string {
  return PREFIX + (++counter).toString(36);
}

/** The id of a request: the incoming value when well-formed, else a new one. */
export function requestIdFor(incoming: string | null): string {
  return incoming !== null && REQUEST_ID.test(incoming) ? incoming : generateRequestId();
}
