// Failures a client causes are the client's (issue 8 item 15): a client that leaves is recorded
// as 499 at debug level, a broken upload is a 400, and neither is logged as a backend error.
// `Connection: close` is answered with `Connection: close` (RFC 9112 §9.6). Pipelining on Bun is
// a runtime limitation (docs/compatibility.md). Raw sockets against the real gateway process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { type GatewayProcess, type LogLine, RUNTIME, startGateway } from "./process.ts";

let be: EchoBackend;
let gw: GatewayProcess;

beforeAll(async () => {
  be = await startEchoBackend();
  gw = await startGateway(`
routes:
  - id: up
    frontend: { domains: [up.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
`);
});
afterAll(async () => {
  await gw?.stop();
  await be?.stop();
});

interface Exchange {
  /** Everything the gateway sent, as latin1 text. */
  received: string;
  /** The gateway closed the connection (within the bounded wait). */
  closedByServer: boolean;
  /** Log lines written while the exchange ran (and shortly after). */
  logs: LogLine[];
}

type Step = string | { wait: number } | "half-close" | "close";

/** Writes raw bytes step by step, then waits (bounded) for the gateway to close, and collects. */
async function exchange(steps: Step[], waitForClose = 3000): Promise<Exchange> {
  const mark = gw.logs.length;
  const socket: Socket = connect(gw.port, "127.0.0.1");
  socket.on("error", () => {});
  let received = "";
  let closedByServer = false;
  let weClosed = false;
  socket.on("data", (d) => (received += d.toString("latin1")));
  const closed = new Promise<void>((r) => socket.on("close", () => r()));
  await new Promise<void>((r) => socket.once("connect", () => r()));
  for (const step of steps) {
    if (step === "half-close") socket.end();
    else if (step === "close") {
      weClosed = true;
      socket.destroy();
    } else if (typeof step === "string") socket.write(step, "latin1");
    else await Bun.sleep(step.wait);
  }
  let done = false;
  await Promise.race([closed.then(() => (closedByServer = !weClosed && !done)), Bun.sleep(waitForClose)]);
  done = true;
  socket.destroy();
  // Lets the gateway finish logging what the exchange caused.
  await Bun.sleep(300);
  return { received, closedByServer, logs: gw.logs.slice(mark) };
}

const statusOf = (raw: string) => (raw.startsWith("HTTP/1.") ? Number(raw.split(" ")[1]) : null);
const errorLines = (logs: LogLine[]) => logs.filter((l) => l.level === "error");
const UPLOAD = "POST /upload HTTP/1.1\r\nHost: up.test\r\n";

describe(`client-caused failures (${RUNTIME})`, () => {
  test("a client that leaves before the answer: 499 at debug, no error line, no 502", async () => {
    const ex = await exchange(["GET /slow/3000 HTTP/1.1\r\nHost: up.test\r\n\r\n", { wait: 300 }, "close"], 0);
    expect(ex.received).toBe("");
    expect(errorLines(ex.logs)).toEqual([]);
    const closedLine = ex.logs.find((l) => l.event === "request.client_closed");
    expect(closedLine).toMatchObject({ level: "debug", status: 499, code: "ERR_CLIENT_CLOSED", path: "/slow/3000" });
  });

  test("an upload cut short by a client that closes: recorded as the client's, never a backend error", async () => {
    const ex = await exchange([UPLOAD + "Content-Length: 1000\r\n\r\n" + "x".repeat(100), { wait: 300 }, "close"], 0);
    expect(errorLines(ex.logs)).toEqual([]);
    expect(ex.logs.some((l) => l.status === 502 || l.code === "ERR_UPSTREAM_ERROR")).toBe(false);
    // Bun aborts the request's signal (499); Deno's listener fails the body instead (400).
    const recorded = ex.logs.find((l) => l.event === "request.client_closed");
    if (RUNTIME === "deno") expect(recorded).toBeUndefined();
    else expect(recorded).toMatchObject({ status: 499, path: "/upload" });
  });

  test("an upload that stops short and half-closes: 400 where the listener still answers, never a 5xx", async () => {
    const ex = await exchange([UPLOAD + "Content-Length: 1000\r\n\r\n" + "x".repeat(100), { wait: 300 }, "half-close"]);
    expect(errorLines(ex.logs)).toEqual([]);
    const status = statusOf(ex.received);
    if (RUNTIME === "deno") {
      // Deno keeps the half-closed connection writable: the client reads the refusal.
      expect(status).toBe(400);
      expect(ex.received).toContain("otoroshi-error-code: ERR_BAD_REQUEST");
      expect(ex.received).toContain('{"Otoroshi-Error":"Incomplete or malformed request body"}');
    } else {
      // Bun treats a half-close as the end of the connection: nothing to answer, a 499 recorded.
      expect(status).toBeNull();
      expect(ex.logs.find((l) => l.event === "request.client_closed")).toMatchObject({ status: 499 });
    }
  });

  test("malformed chunked framing is refused as a client error, never a 502", async () => {
    const ex = await exchange([UPLOAD + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"]);
    expect(errorLines(ex.logs)).toEqual([]);
    const status = statusOf(ex.received);
    // Bun's parser answers 400 itself; Deno's closes the connection without an answer.
    if (status !== null) expect(status).toBe(400);
    expect(ex.received).not.toContain("ERR_UPSTREAM");
  });

  test("Connection: close is answered with Connection: close, then the connection closes", async () => {
    const ex = await exchange(["GET /a HTTP/1.1\r\nHost: up.test\r\nConnection: close\r\n\r\n"]);
    expect(statusOf(ex.received)).toBe(200);
    const head = ex.received.slice(0, ex.received.indexOf("\r\n\r\n")).toLowerCase();
    expect(head.split("\r\n")).toContain("connection: close");
    expect(ex.closedByServer).toBe(true);
    // Also for an error the gateway renders itself, and with close among other tokens.
    const refused = await exchange(["GET / HTTP/1.1\r\nHost: nowhere.test\r\nConnection: keep-alive, Close\r\n\r\n"]);
    expect(statusOf(refused.received)).toBe(404);
    expect(refused.received.toLowerCase()).toContain("\r\nconnection: close\r\n");
    expect(refused.closedByServer).toBe(true);
  });

  test("a keep-alive request is not told to close", async () => {
    const ex = await exchange(["GET /a HTTP/1.1\r\nHost: up.test\r\n\r\n"], 500);
    expect(statusOf(ex.received)).toBe(200);
    expect(ex.received.toLowerCase()).not.toContain("connection: close");
    expect(ex.closedByServer).toBe(false);
  });

  test("pipelined requests: answered in order on Deno; on Bun no answer (oven-sh/bun#38128), and no error line", async () => {
    const two = "GET /one HTTP/1.1\r\nHost: up.test\r\n\r\nGET /two HTTP/1.1\r\nHost: up.test\r\n\r\n";
    const ex = await exchange([two], 1500);
    expect(errorLines(ex.logs)).toEqual([]);
    // Each response follows the previous body directly: not at a line start.
    const answers = ex.received.match(/HTTP\/1\.1 \d{3}/g) ?? [];
    if (RUNTIME === "deno") {
      expect(answers).toEqual(["HTTP/1.1 200", "HTTP/1.1 200"]);
      expect(ex.received.indexOf('"path":"/one"')).toBeLessThan(ex.received.indexOf('"path":"/two"'));
    } else {
      // Bun closes a connection that pipelines behind a response still in progress, before
      // answering either request: the first is then a client abort. Documented limitation.
      expect(answers).toEqual([]);
      expect(ex.closedByServer).toBe(true);
    }
  });
});
