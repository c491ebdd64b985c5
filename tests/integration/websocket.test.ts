// WebSockets through the whole gateway in process, on Bun's listener (the adapter the binary
// uses): a real Bun WebSocket backend, a real WebSocket client, real sockets on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { type AddressInfo, connect, createServer } from "node:net";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { type LoadOptions, loadSnapshot } from "../../src/config/load.ts";
import { configDigest, Reloader } from "../../src/config/reload.ts";
import { ConfigStore } from "../../src/config/store.ts";
import { createGateway } from "../../src/gateway.ts";
import { createQuotaEnforcer, type QuotaEnforcerHandle } from "../../src/limits/quotas.ts";
import { addLogTap } from "../../src/log.ts";
import { gauges } from "../../src/monitoring/gauges.ts";
import { closeAllWebSockets } from "../../src/proxy/websocket.ts";
import { runtime } from "../../src/runtime/bun.ts";
import type { ServerHandle } from "../../src/runtime/types.ts";
import { bunUpstream } from "../helpers/gateway.ts";
import { closed, nextMessage, openWs, startWsBackend, type WsBackend } from "../helpers/ws-backend.ts";

let be: WsBackend;
let dir: string;
let file: string;
let server: ServerHandle;
let reloader: Reloader;
let quotas: QuotaEnforcerHandle;
let base: string;
let deadPort: number;

const yaml = (port: number, idle = 60_000, extra = "") => `
routes:
  - id: open
    frontend: { domains: [127.0.0.1/open] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }], root: /b, client: { idleTimeout: ${idle} } }
  - id: keyed
    frontend: { domains: [127.0.0.1/keyed] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins: [{ plugin: Apikeys }]
${extra}
  - id: failing
    frontend: { domains: [127.0.0.1/failing] }
    backend:
      targets: [{ hostname: 127.0.0.1, port: ${deadPort} }, { hostname: 127.0.0.1, port: ${port} }]
      client: { maxErrors: 1, sampleInterval: 60000, retries: 0 }
  - id: failover
    frontend: { domains: [127.0.0.1/failover] }
    backend:
      targets: [{ hostname: 127.0.0.1, port: ${deadPort} }, { hostname: 127.0.0.1, port: ${port} }]
apikeys:
  - { clientId: ws-client, clientSecret: ws-secret, dailyQuota: 2, monthlyQuota: 100 }
`;

beforeAll(async () => {
  be = startWsBackend();
  // A port nothing listens on: bound, then released.
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  deadPort = probe.port;
  probe.stop(true);
  dir = mkdtempSync(join(tmpdir(), "oto-ws-it-"));
  file = join(dir, "otoroshi.yaml");
  writeFileSync(file, yaml(be.port));
  quotas = createQuotaEnforcer({ stateDir: dir, storeUnavailable: "open", flushIntervalMs: 60_000 });
  const opts: LoadOptions = { env: {}, clock: () => Date.now(), upstreamFetch: bunUpstream, stateDir: dir, quotas };
  const { snapshot, parsed } = loadSnapshot(file, 1, opts);
  const store = new ConfigStore(snapshot);
  reloader = new Reloader(file, store, opts, configDigest(parsed.config));
  server = await runtime.serve({ hostname: "127.0.0.1", port: 0, handler: createGateway(store) });
  base = `ws://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  closeAllWebSockets();
  await server.stop(true);
  be.stop();
  await quotas.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("WebSocket through the gateway (Bun listener)", () => {
  test("text and binary echo; the backend sees the canonical path, the query and X-Forwarded-*", async () => {
    // Headers only the gateway may set are wiped, as for an HTTP call.
    const ws = await openWs(`${base}/open/x/../echo?a=1&b=2`, { headers: { "otoroshi-authenticated-client-id": "forged", "x-forwarded-for": "6.6.6.6" } });
    ws.send("hello");
    expect(await nextMessage(ws)).toBe("hello");
    ws.send(new Uint8Array([0, 1, 2, 255]));
    expect(new Uint8Array((await nextMessage(ws)) as ArrayBuffer)).toEqual(new Uint8Array([0, 1, 2, 255]));
    ws.send("seen");
    const seen = JSON.parse((await nextMessage(ws)) as string) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe("/b/echo?a=1&b=2");
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen.headers["x-forwarded-proto"]).toBe("http");
    expect(seen.headers["sec-websocket-key"]).toBeDefined();
    expect(seen.headers["otoroshi-authenticated-client-id"]).toBeUndefined();
    ws.close(1000, "bye");
    await closed(ws);
  });

  test("the subprotocol the backend picks reaches the client; the client's offer reaches the backend", async () => {
    const ws = await openWs(`${base}/open/echo`, { protocols: ["v2", "chat"] });
    expect(ws.protocol).toBe("chat");
    ws.send("seen");
    const seen = JSON.parse((await nextMessage(ws)) as string) as { headers: Record<string, string> };
    expect(seen.headers["sec-websocket-protocol"]).toBe("v2, chat");
    ws.close();
    await closed(ws);
  });

  test("a backend that refuses the upgrade: its status, headers and body reach the client", async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/open/refuse`, {
      headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("x-refused")).toBe("yes");
    expect(await res.text()).toBe("no websocket here");
  });

  test("close codes and reasons travel both ways", async () => {
    const a = await openWs(`${base}/open/echo`);
    const before = be.closes.length;
    a.close(4321, "client says bye");
    expect(await closed(a)).toEqual({ code: 4321, reason: "client says bye" });
    await until(() => be.closes.length > before);
    expect(be.closes.at(-1)).toEqual({ code: 4321, reason: "client says bye" });
    const b = await openWs(`${base}/open/echo`);
    b.send("close:4011:backend says bye");
    expect(await closed(b)).toEqual({ code: 4011, reason: "backend says bye" });
    const c = await openWs(`${base}/open/echo`);
    c.send("close:1008:policy");
    expect(await closed(c)).toEqual({ code: 1008, reason: "policy" });
  });

  test("a 16 MiB binary message goes both ways intact", async () => {
    const ws = await openWs(`${base}/open/echo`);
    const big = new Uint8Array(16 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
    big[big.length - 1] = 42;
    ws.send(big);
    const back = new Uint8Array((await nextMessage(ws, 20_000)) as ArrayBuffer);
    expect(back.length).toBe(big.length);
    expect(Buffer.from(back).equals(Buffer.from(big))).toBe(true);
    ws.close();
    await closed(ws);
  });

  test("pings travel both ways and are answered", async () => {
    const ws = await openWs(`${base}/open/echo`);
    (ws as unknown as { ping(d: string): void }).ping("from-client");
    await until(() => be.pings.includes("from-client"));
    ws.send("ping:from-backend");
    // The gateway answers the backend's ping with the same payload (RFC 6455 §5.5.2).
    await until(() => be.pongs.includes("from-backend"));
    ws.close();
    await closed(ws);
  });

  test("Apikeys on the upgrade: no key is a 401 the backend never sees; quotas count one call per upgrade", async () => {
    const seenBefore = be.upgrades.length;
    const res = await fetch(`http://127.0.0.1:${server.port}/keyed/echo`, {
      headers: { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ "Otoroshi-Error": "No ApiKey provided" });
    expect(be.upgrades.length).toBe(seenBefore);
    const auth = { authorization: "Basic " + btoa("ws-client:ws-secret") };
    const one = await openWs(`${base}/keyed/echo`, { headers: auth });
    for (let i = 0; i < 5; i++) {
      one.send(`m${i}`);
      expect(await nextMessage(one)).toBe(`m${i}`);
    }
    one.send("seen");
    const seen = JSON.parse((await nextMessage(one)) as string) as { headers: Record<string, string> };
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers["otoroshi-authenticated-client-id"]).toBe("ws-client");
    const two = await openWs(`${base}/keyed/echo`, { headers: auth });
    await expect(openWs(`${base}/keyed/echo`, { headers: auth })).rejects.toThrow();
    const third = await fetch(`http://127.0.0.1:${server.port}/keyed/echo`, {
      headers: { ...auth, upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    });
    expect(third.status).toBe(429);
    for (const ws of [one, two]) ws.close();
  });

  test("open sockets are counted; shutdown closes them with 1001", async () => {
    await until(() => gauges.websocketsOpen === 0);
    const ws = await openWs(`${base}/open/echo`);
    expect(gauges.websocketsOpen).toBe(1);
    const done = closed(ws);
    closeAllWebSockets();
    expect((await done).code).toBe(1001);
    await until(() => gauges.websocketsOpen === 0);
  });

  test("an open socket survives a reload; a silent pair is closed with 1001 after idleTimeout", async () => {
    const ws = await openWs(`${base}/open/echo`);
    writeFileSync(file, yaml(be.port, 300));
    expect(await reloader.reload("test")).toBe("applied");
    ws.send("still here");
    expect(await nextMessage(ws)).toBe("still here");
    const fresh = await openWs(`${base}/open/echo`);
    const idle = await closed(fresh, 5000);
    expect(idle.code).toBe(1001);
    // The old socket keeps its snapshot's 60 s idle timeout.
    ws.send("after");
    expect(await nextMessage(ws)).toBe("after");
    ws.close();
    writeFileSync(file, yaml(be.port));
    expect(await reloader.reload("test")).toBe("applied");
  });

  test("backpressure: a client that does not read holds the backend back instead of filling the gateway", async () => {
    const raw = connect(server.port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      raw.once("connect", () => resolve());
      raw.once("error", reject);
    });
    raw.write("GET /open/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    const head = await new Promise<string>((resolve) => raw.once("data", (d: Buffer) => resolve(d.toString("latin1"))));
    expect(head.startsWith("HTTP/1.1 101")).toBe(true);
    raw.pause();
    // 64 MiB from the backend to a client that reads nothing.
    const text = "flood:64:1048576";
    const mask = [1, 2, 3, 4];
    raw.write(Buffer.from([0x81, 0x80 | text.length, ...mask, ...Buffer.from(text).map((c, i) => c ^ mask[i % 4]!)]));
    // The gateway and the kernel buffers take some megabytes; the rest waits in the backend.
    await until(() => be.buffered() >= 32 * 1024 * 1024, 10_000);
    await Bun.sleep(200);
    expect(be.buffered()).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    raw.destroy();
    await until(() => be.buffered() === 0 || be.open() === 0, 10_000);
  });

  test("backpressure: a backend that does not read holds the client back", async () => {
    const ws = await openWs(`${base}/open/echo`);
    ws.send("pause");
    await Bun.sleep(50);
    const chunk = new Uint8Array(1024 * 1024);
    for (let i = 0; i < 64; i++) ws.send(chunk);
    // The client's own queue keeps most of it: the gateway stopped reading it.
    await until(() => ws.bufferedAmount >= 32 * 1024 * 1024, 10_000).catch(() => {});
    expect(ws.bufferedAmount).toBeGreaterThanOrEqual(32 * 1024 * 1024);
    ws.close();
  });

  test("a target that refuses the handshake's connection counts against its breaker, as for HTTP", async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const ws = await openWs(`${base}/failing/echo`).catch(() => null);
      outcomes.push(ws === null ? "failed" : "open");
      ws?.close();
    }
    // At most one upgrade meets the dead target (maxErrors: 1): then its breaker keeps it out.
    expect(outcomes.filter((o) => o === "failed").length).toBeLessThanOrEqual(1);
    expect(outcomes.slice(2)).toEqual(["open", "open"]);
  });

  test("a handshake that could not connect is tried on another target (backend.client.retries)", async () => {
    for (let i = 0; i < 4; i++) {
      const ws = await openWs(`${base}/failover/echo`);
      ws.send(`f${i}`);
      expect(await nextMessage(ws)).toBe(`f${i}`);
      ws.close();
    }
  });

  test("a backend that breaks RFC 6455 closes the pair with 1011; the log line names the request id", async () => {
    // A backend that completes the handshake, then sends a masked frame (§5.1: a server never masks).
    const bad = createServer((s) => {
      s.once("data", (d: Buffer) => {
        const key = /sec-websocket-key: *(\S+)/i.exec(d.toString("latin1"))![1]!;
        const accept = createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
        s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        s.write(Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]));
      });
      s.on("error", () => {});
    });
    await new Promise<void>((r) => bad.listen(0, "127.0.0.1", r));
    const lines: string[] = [];
    const untap = addLogTap((l) => void lines.push(l));
    try {
      writeFileSync(
        file,
        yaml(be.port, 60_000, `  - id: bad\n    frontend: { domains: [127.0.0.1/bad] }\n    backend: { targets: [{ hostname: 127.0.0.1, port: ${(bad.address() as AddressInfo).port} }] }`),
      );
      await reloader.reload("test");
      const ws = await openWs(`${base}/bad/x`, { headers: { "x-request-id": "ws-proto-1" } });
      expect((await closed(ws)).code).toBe(1011);
      const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === "websocket.backend_protocol_error");
      expect(line?.requestId).toBe("ws-proto-1");
    } finally {
      untap();
      bad.close();
      writeFileSync(file, yaml(be.port));
      await reloader.reload("test");
    }
  });

  test("200 sockets at once", async () => {
    const sockets = await Promise.all(Array.from({ length: 200 }, () => openWs(`${base}/open/echo`)));
    const answers = await Promise.all(sockets.map((ws, i) => {
      const p = nextMessage(ws, 10_000);
      ws.send(`n${i}`);
      return p;
    }));
    expect(answers).toEqual(sockets.map((_, i) => `n${i}`));
    await Promise.all(sockets.map((ws) => {
      const c = closed(ws);
      ws.close();
      return c;
    }));
  });
});

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}
