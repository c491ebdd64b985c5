// Streamed responses through the real gateway process (binary, Deno or Bun per
// OTOROSHI_E2E_RUNTIME): server-sent events reach the client one by one as the backend sends them,
// backend.timeout is the time to response headers only, backend.client.idleTimeout and
// callAndStreamTimeout cut a body, and a client that leaves aborts the upstream call.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type GatewayProcess, startGateway } from "./process.ts";

const TIMEOUT = 60_000;

/** Streams the test can drive: each GET /sse/<id> is a response whose chunks the test writes. */
const streams = new Map<string, { write(text: string): void; end(): void; cancelled: boolean }>();
let backend: Server;
let gw: GatewayProcess;

beforeAll(async () => {
  // node:http, so that headers go out before any body byte (res.flushHeaders), as SSE and
  // long-poll servers do.
  backend = createServer((req, res) => {
    const [, kind, id = "", arg = "0"] = (req.url ?? "/").split("/");
    if (kind === "sse" || kind === "drip") {
      res.writeHead(200, { "content-type": kind === "sse" ? "text/event-stream" : "text/plain", "cache-control": "no-cache" });
      res.flushHeaders();
      const entry = { write: (t: string) => void res.write(t), end: () => void res.end(), cancelled: false };
      streams.set(id, entry);
      res.on("close", () => {
        if (!res.writableFinished) entry.cancelled = true;
      });
      if (kind === "drip") {
        // A chunk every `arg` ms, at most 200 of them.
        let n = 0;
        const timer = setInterval(() => {
          if (entry.cancelled || ++n > 200) {
            clearInterval(timer);
            return void res.end();
          }
          res.write(`tick ${n - 1}\n`);
        }, Number(arg));
      }
      return;
    }
    if (kind === "late") {
      // Headers at once, the body `arg` ms later: a long poll.
      res.writeHead(200, { "content-type": "text/plain" });
      res.flushHeaders();
      setTimeout(() => res.end("finally"), Number(arg));
      return;
    }
    res.writeHead(404).end("not found");
  });
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", () => r()));
  const port = (backend.address() as AddressInfo).port;
  gw = await startGateway(`
routes:
  - id: sse
    frontend: { domains: [127.0.0.1] }
    backend:
      targets: [{ hostname: 127.0.0.1, port: ${port} }]
      timeout: 300
      client: { idleTimeout: 1500 }
  - id: bounded
    frontend: { domains: [localhost] }
    backend:
      targets: [{ hostname: 127.0.0.1, port: ${port} }]
      client: { callAndStreamTimeout: 800 }
`);
}, TIMEOUT);

afterAll(async () => {
  await gw?.stop();
  backend?.closeAllConnections();
  backend?.close();
});

/** Opens /sse/<id> and has the backend send a comment line first: Bun's listener sends a
 * streamed response's headers together with its first body bytes. */
async function openStream(url: string, id: string, init?: RequestInit): Promise<Response> {
  const pending = fetch(url, init);
  await until(() => streams.has(id));
  streams.get(id)!.write(": open\n\n");
  return pending;
}

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(5);
  }
}

/** Reads from `reader` until `text` has been received (bounded). */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, got: { text: string }, want: string, ms = 5000): Promise<void> {
  const dec = new TextDecoder();
  const end = Date.now() + ms;
  while (!got.text.includes(want)) {
    if (Date.now() > end) throw new Error(`"${want}" did not arrive; got ${JSON.stringify(got.text)}`);
    const r = await Promise.race([reader.read(), Bun.sleep(end - Date.now()).then(() => null)]);
    if (r === null) continue;
    if (r.done) throw new Error(`stream ended before "${want}"`);
    got.text += dec.decode(r.value, { stream: true });
  }
}

describe("streamed responses", () => {
  test("server-sent events arrive one by one, each before the backend sends the next", async () => {
    const res = await openStream(`${gw.url}/sse/events`, "events");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    const s = streams.get("events")!;
    const reader = res.body!.getReader();
    const got = { text: "" };
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const sent = performance.now();
      s.write(`id: ${i}\ndata: event ${i}\n\n`);
      // Event i must reach the client while the backend has sent nothing after it.
      await readUntil(reader, got, `data: event ${i}\n\n`);
      delays.push(performance.now() - sent);
      expect(got.text).not.toContain(`event ${i + 1}`);
    }
    s.end();
    await reader.cancel();
    console.log(`SSE event delays through the gateway (ms): ${delays.map((d) => d.toFixed(1)).join(" ")}`);
  }, TIMEOUT);

  test("backend.timeout is the time to headers: a long poll whose body comes later is relayed", async () => {
    const res = await fetch(`${gw.url}/late/x/900`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("finally");
  }, TIMEOUT);

  test("backend.client.idleTimeout cuts a body that stops between chunks", async () => {
    const res = await openStream(`${gw.url}/sse/stalls`, "stalls");
    streams.get("stalls")!.write("data: first\n\n");
    const reader = res.body!.getReader();
    const got = { text: "" };
    await readUntil(reader, got, "data: first");
    // Nothing more comes: the gateway ends the body (the client sees it broken off) and lets the backend go.
    const end = await reader.read().then((r) => (r.done ? "ended" : "more"), () => "broken");
    expect(end).not.toBe("more");
    await until(() => streams.get("stalls")!.cancelled, 10_000);
    await gw.waitForLog((l) => l.event === "request.stream_timeout" && l.timeout === "idleTimeout", 5000);
  }, TIMEOUT);

  test("callAndStreamTimeout cuts a body that keeps flowing", async () => {
    const res = await fetch(`http://localhost:${gw.port}/drip/flow/50`);
    const reader = res.body!.getReader();
    const got = { text: "" };
    await readUntil(reader, got, "tick 0");
    let outcome = "";
    for (let i = 0; i < 400 && outcome === ""; i++) {
      const r = await reader.read().catch(() => "broken" as const);
      if (r === "broken") outcome = "broken";
      else if (r.done) outcome = "ended";
    }
    expect(outcome).not.toBe("");
    // Cut well before the backend's 200 ticks (10 s at 50 ms).
    await until(() => streams.get("flow")!.cancelled, 10_000);
    await gw.waitForLog((l) => l.event === "request.stream_timeout" && l.timeout === "callAndStreamTimeout", 5000);
  }, TIMEOUT);

  test("a client that leaves aborts the upstream call, logged as a client abort (no error line)", async () => {
    const ac = new AbortController();
    const res = await openStream(`${gw.url}/sse/leaver`, "leaver", { signal: ac.signal });
    streams.get("leaver")!.write("data: hi\n\n");
    const reader = res.body!.getReader();
    await readUntil(reader, { text: "" }, "data: hi");
    ac.abort();
    await until(() => streams.get("leaver")!.cancelled, 10_000);
    expect(gw.logs.filter((l) => l.level === "error")).toEqual([]);
  }, TIMEOUT);
});
