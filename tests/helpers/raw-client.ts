// One HTTP/1.1 exchange over a bare TCP socket: the request bytes go out exactly as given (no
// client library to merge, reorder or refuse fields), the connection is read until the server
// closes it, within a deadline.
import { connect } from "node:net";

export interface RawAnswer {
  status: number;
  /** Header lines as received, names lower-cased. */
  headers: [string, string][];
  /** The body, de-chunked when the answer was chunked. */
  body: string;
}

function dechunk(s: string): string {
  let out = "";
  let i = 0;
  for (let guard = 0; guard < 100_000 && i < s.length; guard++) {
    const eol = s.indexOf("\r\n", i);
    if (eol < 0) break;
    const size = parseInt(s.slice(i, eol), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out += s.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
  return out;
}

/** Sends `request` (it should say `Connection: close`) and parses the one answer. */
export function rawExchange(port: number, request: string, timeoutMs = 10_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      const head = end < 0 ? text : text.slice(0, end);
      const [line = "", ...fields] = head.split("\r\n");
      const headers = fields.map((f): [string, string] => [f.slice(0, f.indexOf(":")).toLowerCase(), f.slice(f.indexOf(":") + 1).trim()]);
      const raw = end < 0 ? "" : text.slice(end + 4);
      const chunked = headers.some(([k, v]) => k === "transfer-encoding" && v.toLowerCase().includes("chunked"));
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(line)?.[1] ?? 0), headers, body: chunked ? dechunk(raw) : raw });
    });
  });
}
