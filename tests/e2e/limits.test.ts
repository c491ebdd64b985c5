// One slow backend must not starve the other routes (issue 8 item 3): 500 calls held by a
// backend that accepts connections and never answers, while another route's calls go through.
// The real gateway process (binary or Deno), raw sockets on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { type GatewayProcess, runCli, RUNTIME, startGateway } from "./process.ts";

const HELD_CALLS = 500;
const MAX_CONNECTIONS = 300; // above Bun's own default of 256 in-flight fetches per process
const QUEUE_SIZE = 100;

/** A backend that accepts every connection and never answers; it counts and keeps them. */
interface HoldingBackend {
  port: number;
  accepted: number;
  open: Set<Socket>;
  close(): Promise<void>;
}

async function startHoldingBackend(): Promise<HoldingBackend> {
  const open = new Set<Socket>();
  const hb = { port: 0, accepted: 0, open } as HoldingBackend;
  const server: Server = createServer((s) => {
    hb.accepted++;
    open.add(s);
    s.on("error", () => {});
    // Reads (and drops) what arrives, so a FIN from the gateway is seen as the end it is.
    s.resume();
    s.on("end", () => s.destroy());
    s.on("close", () => open.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  hb.port = (server.address() as AddressInfo).port;
  hb.close = async () => {
    for (const s of open) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return hb;
}

interface RawCall {
  socket: Socket;
  /** Status line, headers and body once a whole response with Content-Length has arrived. */
  response: { status: number; headers: Map<string, string>; body: string } | null;
}

/** One GET on its own connection, written as raw bytes; the response is parsed as it comes. */
function rawGet(port: number, host: string, path = "/"): RawCall {
  const call: RawCall = { socket: connect(port, "127.0.0.1"), response: null };
  let buf = "";
  call.socket.on("error", () => {});
  call.socket.on("data", (d) => {
    buf += d.toString("latin1");
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0 || call.response) return;
    const [statusLine, ...lines] = buf.slice(0, end).split("\r\n");
    const headers = new Map(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()] as [string, string]));
    const length = Number(headers.get("content-length") ?? 0);
    if (buf.length - end - 4 < length) return;
    call.response = { status: Number(statusLine!.split(" ")[1]), headers, body: buf.slice(end + 4, end + 4 + length) };
  });
  call.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  return call;
}

/** Waits until cond() holds, at most `ms` (a bound on the wait, not an assertion on time). */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const stop = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > stop) throw new Error(`gave up waiting: ${what}`);
    await Bun.sleep(20);
  }
}

let held: HoldingBackend;
let echo: EchoBackend;
let gw: GatewayProcess;
const calls: RawCall[] = [];

beforeAll(async () => {
  held = await startHoldingBackend();
  echo = await startEchoBackend();
  gw = await startGateway(`
routes:
  - id: held
    frontend: { domains: [held.test] }
    backend:
      targets: [{ hostname: 127.0.0.1, port: ${held.port} }]
      timeout: 60000
      client: { maxConnections: ${MAX_CONNECTIONS}, queueSize: ${QUEUE_SIZE} }
  - id: echo
    frontend: { domains: [echo.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${echo.port} }] }
`);
});

afterAll(async () => {
  for (const c of calls) c.socket.destroy();
  await gw?.stop();
  await held?.close();
  await echo?.stop();
});

describe(`backend connection limits (${RUNTIME})`, () => {
  test(`${HELD_CALLS} calls held by one backend: its overflow gets 503 at once, other routes still answer`, async () => {
    for (let i = 0; i < HELD_CALLS; i++) calls.push(rawGet(gw.port, "held.test", `/held/${i}`));
    const answered = () => calls.filter((c) => c.response !== null);
    const overflow = HELD_CALLS - MAX_CONNECTIONS - QUEUE_SIZE;
    await until(() => held.accepted >= MAX_CONNECTIONS && answered().length >= overflow, 30_000, `${MAX_CONNECTIONS} calls at the backend and ${overflow} refusals`);

    // maxConnections calls reached the backend; queueSize more wait; the rest were refused.
    expect(held.accepted).toBe(MAX_CONNECTIONS);
    const refused = answered();
    expect(refused.length).toBe(overflow);
    for (const { response } of refused) {
      expect(response!.status).toBe(503);
      expect(response!.headers.get("otoroshi-error")).toBe("true");
      expect(response!.headers.get("otoroshi-error-code")).toBe("ERR_UPSTREAM_BUSY");
      expect(response!.headers.get("retry-after")).toBe("1");
      expect(JSON.parse(response!.body)).toEqual({ "Otoroshi-Error": response!.headers.get("otoroshi-error-msg") });
    }

    // Meanwhile another route on another backend answers every call.
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => fetch(`${gw.url}/other/${i}`, { headers: { host: "echo.test" }, signal: AbortSignal.timeout(20_000) }).then(async (r) => ({ status: r.status, body: (await r.json()) as EchoBody })),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
    expect(results.map((r) => r.body.path)).toEqual(results.map((_, i) => `/other/${i}`));

    // Refusals are warnings, not errors; nothing blamed a backend.
    expect(gw.logs.filter((l) => l.level === "error")).toEqual([]);
    expect(gw.logs.some((l) => l.event === "request.refused" && l.code === "ERR_UPSTREAM_BUSY")).toBe(true);
  });

  test("clients that leave free their slots and places: the gateway drops their backend calls", async () => {
    for (const c of calls) c.socket.destroy();
    await until(() => gw.logs.filter((l) => l.event === "request.client_closed").length >= MAX_CONNECTIONS + QUEUE_SIZE, 20_000, "every held and queued call to be recorded as a client abort");
    await until(() => held.open.size === 0, 20_000, `the gateway to close every connection to the holding backend (${held.open.size} open)`);
    expect(held.open.size).toBe(0);
    // Every slot is free again: a new call reaches the backend instead of being refused.
    const before = held.accepted;
    const again = rawGet(gw.port, "held.test", "/again");
    calls.push(again);
    await until(() => held.accepted > before || again.response !== null, 20_000, "the new call to reach the backend");
    expect(again.response).toBeNull();
    expect(held.accepted).toBe(before + 1);
    // Clients leaving are recorded as 499 at debug level, never as backend errors.
    expect(gw.logs.find((l) => l.event === "request.client_closed")).toMatchObject({ level: "debug", status: 499, code: "ERR_CLIENT_CLOSED" });
    expect(gw.logs.filter((l) => l.level === "error")).toEqual([]);
  });
});

describe(`check and connection limits (${RUNTIME})`, () => {
  test("check warns when one route's maxConnections × targets reaches server.maxUpstreamRequests", async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "oto-limits-"));
    const file = join(dir, "otoroshi.yaml");
    writeFileSync(
      file,
      `server:
  maxUpstreamRequests: 500
routes:
  - id: wide
    frontend: { domains: [wide.test] }
    backend:
      targets: [{ hostname: 127.0.0.1, port: 1 }, { hostname: 127.0.0.2, port: 1 }]
  - id: narrow
    frontend: { domains: [narrow.test] }
    backend:
      targets: [{ hostname: 127.0.0.1, port: 1 }]
      client: { maxConnections: 100 }
`,
    );
    try {
      const r = await runCli(["check", "--config", file]);
      expect(r.code).toBe(0);
      const warnings = r.stderr.split("\n").filter((l) => l.startsWith("warning:"));
      expect(warnings.length).toBe(1);
      expect(warnings[0]).toContain(`${file}:7:`);
      expect(warnings[0]).toContain("routes[0].backend.client.maxConnections: maxConnections × the number of targets reaches server.maxUpstreamRequests");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
