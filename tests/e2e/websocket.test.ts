// WebSockets through the real gateway process (binary, Deno or Bun per OTOROSHI_E2E_RUNTIME):
// a real Bun WebSocket backend (plain and TLS), real WebSocket clients, and raw TCP peers where
// a client library would hide the frames (fragmentation).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closed, nextMessage, openWs, startWsBackend, type WsBackend } from "../helpers/ws-backend.ts";
import { type GatewayProcess, startGateway } from "./process.ts";

const TIMEOUT = 60_000;
let be: WsBackend;
let tlsBe: WsBackend;
let raw: Server;
let gw: GatewayProcess;
let base: string;
let certDir: string;
let cert: string;

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const upgradeHeaders = { upgrade: "websocket", connection: "Upgrade", "sec-websocket-version": "13", "sec-websocket-key": KEY };

const yaml = (idle = 60_000) => `
routes:
  - id: open
    frontend: { domains: [127.0.0.1/open] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }], client: { idleTimeout: ${idle} } }
  - id: secure
    frontend: { domains: [127.0.0.1/secure] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${tlsBe.port}, tls: true, tlsConfig: { ca: "${cert.replaceAll("\n", "\\n")}" } }] }
  - id: untrusted
    frontend: { domains: [127.0.0.1/untrusted] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${tlsBe.port}, tls: true }] }
  - id: raw
    frontend: { domains: [127.0.0.1/raw] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${(raw.address() as AddressInfo).port} }] }
  - id: keyed
    frontend: { domains: [127.0.0.1/keyed] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
  - { clientId: ws-client, clientSecret: ws-secret }
`;

/** A backend that completes the handshake by hand and sends "hello" in three fragments plus a ping between them. */
function startFragmentingBackend(): Promise<Server> {
  const srv = createServer((s: Socket) => {
    let head = "";
    s.on("data", (d) => {
      if (head.includes("\r\n\r\n")) return;
      head += d.toString("latin1");
      if (!head.includes("\r\n\r\n")) return;
      const key = /sec-websocket-key: *(\S+)/i.exec(head)![1]!;
      const accept = new Bun.CryptoHasher("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
      s.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      // RFC 6455 §5.4: text "hel" (FIN 0), ping "p" in between (§5.5), "l" (cont.), "o" (cont., FIN).
      s.write(Buffer.from([0x01, 3, ...Buffer.from("hel"), 0x89, 1, 0x70, 0x00, 1, 0x6c, 0x80, 1, 0x6f]));
    });
    s.on("error", () => {});
  });
  return new Promise((r) => srv.listen(0, "127.0.0.1", () => r(srv)));
}

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), "oto-ws-cert-"));
  const r = spawnSync([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-keyout",
    join(certDir, "k.pem"),
    "-out",
    join(certDir, "c.pem"),
  ], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  cert = readFileSync(join(certDir, "c.pem"), "utf8");
  be = startWsBackend();
  tlsBe = startWsBackend({ tls: { cert, key: readFileSync(join(certDir, "k.pem"), "utf8") } });
  raw = await startFragmentingBackend();
  gw = await startGateway(yaml());
  base = `ws://127.0.0.1:${gw.port}`;
}, TIMEOUT);

afterAll(async () => {
  await gw?.stop();
  be?.stop();
  tlsBe?.stop();
  raw?.close();
  rmSync(certDir, { recursive: true, force: true });
});

describe("WebSocket through the gateway process", () => {
  test("text and binary echo; canonical path and query; X-Forwarded-* on the backend", async () => {
    const ws = await openWs(`${base}/open/a/./echo?q=1%202`);
    ws.send("hello");
    expect(await nextMessage(ws)).toBe("hello");
    ws.send(new Uint8Array([9, 8, 7, 0]));
    expect(new Uint8Array((await nextMessage(ws)) as ArrayBuffer)).toEqual(new Uint8Array([9, 8, 7, 0]));
    ws.send("seen");
    const seen = JSON.parse((await nextMessage(ws)) as string) as { url: string; headers: Record<string, string> };
    expect(seen.url).toBe("/a/echo?q=1%202");
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");
    ws.close();
    await closed(ws);
  }, TIMEOUT);

  test("wss:// to a target with its own CA; a target whose certificate is not trusted is a 502", async () => {
    const ws = await openWs(`${base}/secure/echo`);
    ws.send("over tls");
    expect(await nextMessage(ws)).toBe("over tls");
    ws.close();
    const res = await fetch(`http://127.0.0.1:${gw.port}/untrusted/echo`, { headers: upgradeHeaders });
    expect(res.status).toBe(502);
  }, TIMEOUT);

  test("subprotocol: the client's offer reaches the backend, the backend's choice the client", async () => {
    const ws = await openWs(`${base}/open/echo`, { protocols: ["v1", "chat"] });
    expect(ws.protocol).toBe("chat");
    ws.send("seen");
    const seen = JSON.parse((await nextMessage(ws)) as string) as { headers: Record<string, string> };
    expect(seen.headers["sec-websocket-protocol"]).toBe("v1, chat");
    ws.close();
  }, TIMEOUT);

  test("a refused upgrade: the backend's status, headers and body", async () => {
    const res = await fetch(`http://127.0.0.1:${gw.port}/open/refuse`, { headers: upgradeHeaders });
    expect(res.status).toBe(403);
    expect(res.headers.get("x-refused")).toBe("yes");
    expect(await res.text()).toBe("no websocket here");
  }, TIMEOUT);

  test("Apikeys on the upgrade: 401 without a key and the backend never sees it", async () => {
    const before = be.upgrades.length;
    const res = await fetch(`http://127.0.0.1:${gw.port}/keyed/echo`, { headers: upgradeHeaders });
    expect(res.status).toBe(401);
    expect(be.upgrades.length).toBe(before);
    const ws = await openWs(`${base}/keyed/echo`, { headers: { authorization: "Basic " + btoa("ws-client:ws-secret") } });
    ws.send("seen");
    const seen = JSON.parse((await nextMessage(ws)) as string) as { headers: Record<string, string> };
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers["otoroshi-authenticated-client-id"]).toBe("ws-client");
    ws.close();
  }, TIMEOUT);

  test("close codes and reasons both ways", async () => {
    const a = await openWs(`${base}/open/echo`);
    const n = be.closes.length;
    a.close(4001, "from the client");
    await closed(a);
    await until(() => be.closes.length > n);
    expect(be.closes.at(-1)).toEqual({ code: 4001, reason: "from the client" });
    const b = await openWs(`${base}/open/echo`);
    b.send("close:4002:from the backend");
    expect(await closed(b)).toEqual({ code: 4002, reason: "from the backend" });
    const c = await openWs(`${base}/open/echo`);
    c.send("close:1011:oops");
    expect(await closed(c)).toEqual({ code: 1011, reason: "oops" });
  }, TIMEOUT);

  test("16 MiB messages both ways", async () => {
    const ws = await openWs(`${base}/open/echo`);
    const big = new Uint8Array(16 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 1000) big[i] = (i / 1000) & 0xff;
    ws.send(big);
    const back = new Uint8Array((await nextMessage(ws, 30_000)) as ArrayBuffer);
    expect(back.length).toBe(big.length);
    expect(Buffer.from(back).equals(Buffer.from(big))).toBe(true);
    ws.send("x".repeat(16 * 1024 * 1024));
    expect(((await nextMessage(ws, 30_000)) as string).length).toBe(16 * 1024 * 1024);
    ws.close();
  }, TIMEOUT);

  test("fragmented messages: joined, with a ping between fragments answered", async () => {
    const ws = await openWs(`${base}/raw/`);
    expect(await nextMessage(ws)).toBe("hello");
    ws.close();
    // Client to backend: a raw client sends "ab" + "cd" as two masked fragments.
    const text = await rawFragmentedEcho(gw.port);
    expect(text).toBe("abcd");
  }, TIMEOUT);

  test("the backend's pings are answered; the client's reach the backend where the runtime shows them", async () => {
    const ws = await openWs(`${base}/open/echo`);
    ws.send("ping:are you there");
    await until(() => be.pongs.includes("are you there"));
    ws.close();
  }, TIMEOUT);

  test("200 sockets at once", async () => {
    const sockets = await Promise.all(Array.from({ length: 200 }, () => openWs(`${base}/open/echo`)));
    const answers = await Promise.all(sockets.map((ws, i) => {
      const p = nextMessage(ws, 20_000);
      ws.send(`n${i}`);
      return p;
    }));
    expect(answers).toEqual(sockets.map((_, i) => `n${i}`));
    await Promise.all(sockets.map((ws) => {
      const c = closed(ws, 10_000);
      ws.close();
      return c;
    }));
  }, TIMEOUT);

  test("a reload keeps open sockets on their snapshot; new ones get the new idle timeout (1001)", async () => {
    const ws = await openWs(`${base}/open/echo`);
    const gen = gw.logs.filter((l) => l.event === "config.reloaded").length + 2;
    writeFileSync(gw.file, yaml(400));
    await gw.waitForLog((l) => l.event === "config.reloaded" && l.generation === gen, 15_000);
    ws.send("after reload");
    expect(await nextMessage(ws)).toBe("after reload");
    const fresh = await openWs(`${base}/open/echo`);
    expect((await closed(fresh, 10_000)).code).toBe(1001);
    ws.send("old one lives");
    expect(await nextMessage(ws)).toBe("old one lives");
    ws.close();
  }, TIMEOUT);
});

test("graceful shutdown closes open sockets with 1001", async () => {
  const g = await startGateway(yaml());
  try {
    const ws = await openWs(`ws://127.0.0.1:${g.port}/open/echo`);
    const done = closed(ws, 15_000);
    g.proc.kill("SIGTERM");
    expect((await done).code).toBe(1001);
    expect(await g.proc.exited).toBe(0);
  } finally {
    await g.stop();
  }
}, TIMEOUT);

async function until(pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await Bun.sleep(10);
  }
}

/** A raw client: handshake, then "ab" (FIN 0) and "cd" (continuation, FIN 1), masked; the echo's text. */
function rawFragmentedEcho(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error("no echo in time"));
    }, 10_000);
    let buf = Buffer.alloc(0);
    let upgraded = false;
    s.on("connect", () => s.write(`GET /open/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`));
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        if (!buf.subarray(0, 12).toString().includes("101")) return reject(new Error(buf.toString()));
        upgraded = true;
        buf = buf.subarray(end + 4);
        const mask = [1, 2, 3, 4];
        const frame = (b0: number, text: string) => Buffer.from([b0, 0x80 | text.length, ...mask, ...Buffer.from(text).map((c, i) => c ^ mask[i % 4]!)]);
        s.write(Buffer.concat([frame(0x01, "ab"), frame(0x80, "cd")]));
      }
      if (buf.length >= 2 && buf.length >= 2 + (buf[1]! & 0x7f)) {
        clearTimeout(timer);
        resolve(buf.subarray(2, 2 + (buf[1]! & 0x7f)).toString());
        s.destroy();
      }
    });
    s.on("error", reject);
  });
}
