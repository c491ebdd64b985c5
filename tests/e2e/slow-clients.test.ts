// Slow clients (slowloris) against the real gateway process: connections that say nothing, send
// their request head a byte at a time, or stay idle after a response are closed by the gateway,
// on both listeners, while ordinary calls keep being answered.
//
// Deadlines differ by runtime (docs/security.md, "Limits and slow clients"): Deno closes a head
// that is not complete within min(10 s, server.idleTimeout) and an idle keep-alive connection
// after server.idleTimeout; Bun's own head deadline is a fixed ~10 s checked every 4 s. The test
// waits for every close with one generous bound and asserts none is missing, never a speed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";

const CLOSE_BOUND_MS = 40_000;
const TRICKLE_MS = 250;

let be: EchoBackend;
let gw: GatewayProcess;
const certDir = mkdtempSync(join(tmpdir(), "oto-slow-"));

function makeCert(name: string): { key: string; cert: string } {
  const key = join(certDir, `${name}.key`);
  const cert = join(certDir, `${name}.crt`);
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
    `/CN=${name}`,
    "-addext",
    `subjectAltName=DNS:${name}`,
    "-keyout",
    key,
    "-out",
    cert,
  ], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  return { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") };
}

const indent = (pem: string) => pem.trim().split("\n").join("\n      ");

beforeAll(async () => {
  be = await startEchoBackend();
  const c = makeCert("slow.test");
  gw = await startGateway(`
server:
  idleTimeout: 1
  https: { port: 0, keyPairs: [cert] }
routes:
  - id: echo
    frontend: { domains: [echo.test, slow.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
keypairs:
  - id: cert
    privateKey: |
      ${indent(c.key)}
    certificate: |
      ${indent(c.cert)}
`);
});
afterAll(async () => {
  await gw?.stop();
  await be?.stop();
  rmSync(certDir, { recursive: true, force: true });
});

type Kind = "silent" | "slow request line" | "slow headers" | "idle after a response" | "tls: no handshake" | "tls: silent after handshake";

interface Slow {
  kind: Kind;
  socket: net.Socket;
  /** Set when the gateway ended the connection (EOF or reset), never by this test. */
  closed: Promise<string>;
  received: () => string;
}

const timers: ReturnType<typeof setInterval>[] = [];

function slowClient(kind: Kind): Slow {
  const isTls = kind.startsWith("tls");
  const socket = kind === "tls: silent after handshake"
    ? tls.connect({ host: "127.0.0.1", port: gw.httpsPort!, servername: "slow.test", rejectUnauthorized: false })
    : net.connect(isTls ? gw.httpsPort! : gw.port, "127.0.0.1");
  let received = "";
  socket.on("data", (d: Buffer) => void (received += d.toString("latin1")));
  const closed = new Promise<string>((resolve) => {
    socket.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    socket.on("close", () => resolve("closed"));
  });
  socket.once(kind === "tls: silent after handshake" ? "secureConnect" : "connect", () => {
    if (kind === "slow request line" || kind === "slow headers") {
      const head = kind === "slow request line" ? "GET /slow-request-line-that-never-ends" : "GET / HTTP/1.1\r\nHost: echo.test\r\n";
      let i = 0;
      if (kind === "slow headers") socket.write(head);
      // One byte (or one header line) at a time, for as long as the socket is open.
      const t = setInterval(() => {
        if (socket.destroyed) return clearInterval(t);
        socket.write(kind === "slow request line" ? head[i++ % head.length] : `X-Slow-${i++}: a\r\n`);
      }, TRICKLE_MS);
      timers.push(t);
    }
    if (kind === "idle after a response") socket.write("GET /first HTTP/1.1\r\nHost: echo.test\r\n\r\n");
  });
  return { kind, socket, closed, received: () => received };
}

describe(`slow clients (${RUNTIME})`, () => {
  test("200 slow connections are closed by the gateway while normal calls succeed", async () => {
    // Deno cannot close a TLS connection whose handshake never starts (its TLS stream waits for
    // the handshake before it lets go of the socket, and has no handshake timeout): a known gap,
    // documented; the Deno run has 10 more silent plain connections instead.
    const kinds: [Kind, number][] = [
      ["silent", RUNTIME === "deno" ? 60 : 50],
      ["slow request line", 40],
      ["slow headers", 40],
      ["idle after a response", 50],
      ...(RUNTIME === "deno" ? [] : [["tls: no handshake", 10] as [Kind, number]]),
      ["tls: silent after handshake", 10],
    ];
    const slow: Slow[] = [];
    try {
      for (const [kind, n] of kinds) for (let i = 0; i < n; i++) slow.push(slowClient(kind));
      expect(slow.length).toBe(200);

      // While all 200 are open: ordinary calls on both listeners are answered.
      const calls = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const res = await fetch(`${gw.url}/call/${i}`, { headers: { host: "echo.test" } });
          return [res.status, ((await res.json()) as { path: string }).path];
        }),
      );
      expect(calls).toEqual(Array.from({ length: 20 }, (_, i) => [200, `/call/${i}`]));
      const secure = await fetch(`https://127.0.0.1:${gw.httpsPort}/tls`, { headers: { host: "slow.test" }, tls: { rejectUnauthorized: false, serverName: "slow.test" } } as RequestInit);
      expect(secure.status).toBe(200);
      await secure.body?.cancel();

      // Every slow connection is ended by the gateway within the bound; none left open.
      const deadline = new Promise<"open">((resolve) => timers.push(setTimeout(() => resolve("open"), CLOSE_BOUND_MS)));
      const outcomes = await Promise.all(slow.map((s) => Promise.race([s.closed, deadline])));
      const open = slow.filter((_, i) => outcomes[i] === "open").map((s) => s.kind);
      expect(open).toEqual([]);

      // The idle keep-alive ones were answered first; no partial head was ever served (Bun
      // answers a request line that never ends with its own 505 as it closes).
      for (const s of slow) {
        const status = /^HTTP\/1\.1 (\d{3})/.exec(s.received())?.[1];
        if (s.kind === "idle after a response") expect([s.kind, status]).toEqual([s.kind, "200"]);
        else expect([s.kind, status?.startsWith("2") ? "served" : "not served"]).toEqual([s.kind, "not served"]);
      }

      // And the gateway still serves afterwards.
      const after = await fetch(`${gw.url}/after`, { headers: { host: "echo.test" } });
      expect(after.status).toBe(200);
      await after.body?.cancel();
    } finally {
      for (const t of timers) clearInterval(t);
      for (const s of slow) s.socket.destroy();
    }
  }, CLOSE_BOUND_MS + 20_000);
});
