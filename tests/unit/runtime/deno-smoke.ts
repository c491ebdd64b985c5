// Smoke test of the Deno adapter, run by deno.test.ts as `deno run -A` (bun test cannot load
// Deno.*). Prints "ok" and exits 0 when every check passes; prints the failure and exits 1.
// Run by hand: ./node_modules/.bin/deno run -A tests/unit/runtime/deno-smoke.ts

import { execFile, execFileSync } from "node:child_process";
import net from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { gzipSync } from "node:zlib";
import { ConnectionDeadlines } from "../../../src/runtime/listener.ts";
import type { Runtime, ServerHandle } from "../../../src/runtime/types.ts";

// Loaded through a computed specifier so that tsc (which checks tests/ with Bun's types and
// excludes the Deno adapter) does not follow the import into deno.ts.
const adapter = new URL("../../../src/runtime/deno.ts", import.meta.url).href;
const { runtime } = (await import(adapter)) as { runtime: Runtime };

function execFileAsync(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(file, args, (err, stdout) => (err ? reject(err) : resolve(stdout))));
}

function check(cond: unknown, what: string): asserts cond {
  if (!cond) throw new Error(`check failed: ${what}`);
}

const dir = mkdtempSync(join(tmpdir(), "oto-deno-smoke-"));
const servers: ServerHandle[] = [];

/** A CA and leaves signed by it: rustls refuses a self-signed CA:TRUE cert as a leaf. */
function pki() {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  const ca = (n: string) => run("req", "-x509", ...ec, "-subj", `/CN=${n}`, "-keyout", `${n}.key`, "-out", `${n}.crt`, "-days", "2");
  const leaf = (n: string, caName: string, san: string) => {
    run("req", ...ec, "-subj", `/CN=${n}`, "-keyout", `${n}.key`, "-out", `${n}.csr`);
    writeFileSync(join(dir, `${n}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    run("x509", "-req", "-in", `${n}.csr`, "-CA", `${caName}.crt`, "-CAkey", `${caName}.key`, "-CAcreateserial", "-days", "2", "-extfile", `${n}.ext`, "-out", `${n}.crt`);
  };
  ca("ca1");
  ca("ca2");
  leaf("local", "ca1", "DNS:localhost,IP:127.0.0.1");
  leaf("a", "ca1", "DNS:a.test");
  leaf("b", "ca1", "DNS:b.test,DNS:*.b.test");
  const pem = (n: string) => ({ cert: readFileSync(join(dir, `${n}.crt`), "utf8"), key: readFileSync(join(dir, `${n}.key`), "utf8") });
  return { ca1: pem("ca1").cert, ca2: pem("ca2").cert, local: pem("local"), a: pem("a"), b: pem("b") };
}

/** The CN of the certificate the server presents for an SNI name. */
function certFor(port: number, servername: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, ca, rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.end();
      resolve(String(cn));
    });
    socket.on("error", reject);
  });
}

async function fails(p: Promise<Response>): Promise<boolean> {
  try {
    await (await p).body?.cancel();
    return false;
  } catch {
    return true;
  }
}

async function main() {
  const keys = pki();
  const payload = "hello ".repeat(300);
  const gz = gzipSync(payload);

  const plain = await runtime.serve({
    hostname: "127.0.0.1",
    port: 0,
    maxRequestBodySize: 1000,
    handler: async (req, info) => {
      const path = new URL(req.url).pathname;
      if (path === "/throw") throw new Error("secret stack detail");
      if (path === "/gzip") return new Response(gz, { headers: { "content-encoding": "gzip", "content-type": "text/plain" } });
      if (path === "/redirect") return new Response(null, { status: 302, headers: { location: "/elsewhere" } });
      const body = req.body ? await req.text() : "";
      return Response.json({ ip: info.remoteAddress, secure: info.secure, host: req.headers.get("host"), len: body.length });
    },
  });
  servers.push(plain);
  check(plain.port > 0, "port 0 resolves to a real port");
  const base = `http://127.0.0.1:${plain.port}`;

  const hello = await (await fetch(`${base}/`, { method: "POST", body: "x".repeat(500) })).json();
  check(hello.ip === "127.0.0.1" && hello.secure === false && hello.len === 500, `serve + remoteAddress: ${JSON.stringify(hello)}`);
  const big = await fetch(`${base}/`, { method: "POST", body: "x".repeat(5000) });
  check(big.status === 413, `maxRequestBodySize → 413, got ${big.status}`);
  await big.body?.cancel();
  const chunked = await fetch(`${base}/`, { method: "POST", body: new Blob(["x".repeat(5000)]).stream(), duplex: "half" } as RequestInit);
  check(chunked.status === 413, `chunked body over maxRequestBodySize → 413, got ${chunked.status}`);
  await chunked.body?.cancel();
  const boom = await fetch(`${base}/throw`);
  const boomText = await boom.text();
  check(boom.status === 500 && JSON.parse(boomText)["Otoroshi-Error"] === "internal error" && !boomText.includes("secret"), "handler error → JSON 500 without detail");

  const up = runtime.upstreamFetch();
  check(runtime.upstreamFetch() === up, "one client per TLS setting");
  const gzr = await up(`${base}/gzip`, { headers: { "accept-encoding": "gzip" } });
  const raw = new Uint8Array(await gzr.arrayBuffer());
  check(gzr.headers.get("content-encoding") === "gzip" && raw.length === gz.length && raw[0] === 0x1f, "upstream body stays compressed");
  const hosted = await (await up(`${base}/`, { headers: { host: "foo.example" } })).json();
  check(hosted.host === "foo.example", `Host header honoured: ${hosted.host}`);
  const redirect = await up(`${base}/redirect`, {});
  check(redirect.status === 302 && redirect.headers.get("location") === "/elsewhere", "redirects not followed");
  const streamed = await (await up(`${base}/`, { method: "POST", body: new Blob(["y".repeat(700)]).stream(), duplex: "half" } as RequestInit)).json();
  check(streamed.len === 700, "streamed request body");
  check(await fails(up(`${base}/`, { signal: AbortSignal.abort() })), "aborted signal rejects");

  const backend = await runtime.serve({ hostname: "127.0.0.1", port: 0, tls: [{ ...keys.local, serverNames: ["localhost"] }], handler: (_req, info) => Response.json({ secure: info.secure }) });
  servers.push(backend);
  const tlsUrl = `https://localhost:${backend.port}/`;
  check(await fails(runtime.upstreamFetch()(tlsUrl, {})), "unknown CA rejected");
  check(await fails(runtime.upstreamFetch({ ca: keys.ca2 })(tlsUrl, {})), "a different CA rejected");
  const viaCa = await (await runtime.upstreamFetch({ ca: keys.ca1 })(tlsUrl, {})).json();
  check(viaCa.secure === true, "custom CA trusted, secure flag set");
  check((await runtime.upstreamFetch({ insecure: true })(tlsUrl, {})).status === 200, "insecure accepts any cert");

  const sni = await runtime.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: [{ ...keys.a, serverNames: ["a.test"] }, { ...keys.b, serverNames: ["b.test", "*.b.test"] }],
    handler: () => new Response("sni"),
  });
  servers.push(sni);
  check((await certFor(sni.port, "a.test", keys.ca1)) === "a", "SNI a.test → a");
  check((await certFor(sni.port, "b.test", keys.ca1)) === "b", "SNI b.test → b");
  check((await certFor(sni.port, "x.B.test", keys.ca1)) === "b", "SNI wildcard → b");
  check((await certFor(sni.port, "other.test", keys.ca1)) === "a", "unknown SNI → first cert");

  await slowClients();
  await absoluteForm();
  await gracefulStop();
  await abortRace();
  // execFile, not execFileSync: the server answering curl runs on this thread.
  const h2 = await execFileAsync("curl", ["-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version}", "--resolve", `a.test:${sni.port}:127.0.0.1`, `https://a.test:${sni.port}/`]);
  check(h2 === "2", `HTTP/2 over TLS (ALPN), got ${h2}`);

  check(runtime.name === "deno" && runtime.version === process.versions.deno && Array.isArray(runtime.args), "name, version, args");
}

/** Resolves with how the server ended a raw connection ("closed"), or "open" after ms. */
function rawClient(port: number, send: (s: net.Socket) => void, ms: number): Promise<{ end: string; data: string }> {
  return new Promise((resolve) => {
    let data = "";
    const s = net.connect(port, "127.0.0.1", () => send(s));
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ end: "open", data });
    }, ms);
    s.on("data", (d) => void (data += d.toString("latin1")));
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(timer);
      resolve({ end: "closed", data });
    });
  });
}

/** With idleTimeoutSeconds 1: silent, trickling and idle keep-alive connections are closed; a slow answer is not cut. */
async function slowClients() {
  const server = await runtime.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeoutSeconds: 1,
    handler: async (req) => {
      if (new URL(req.url).pathname === "/slow") await new Promise((r) => setTimeout(r, 2500));
      return new Response("done");
    },
  });
  servers.push(server);
  const trickle = (s: net.Socket) => {
    const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write("X-A: b\r\n")), 200);
    s.write("GET / HTTP/1.1\r\nHost: x\r\n");
  };
  const [silent, slowHead, keptAlive, slowAnswer, stalledBody] = await Promise.all([
    rawClient(server.port, () => {}, 8000),
    rawClient(server.port, trickle, 8000),
    rawClient(server.port, (s) => s.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 8000),
    rawClient(server.port, (s) => s.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"), 8000),
    // Answered without its body being read (as a 401 is), then the body never comes.
    rawClient(server.port, (s) => s.write("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc"), 8000),
  ]);
  check(stalledBody.end === "closed" && stalledBody.data.startsWith("HTTP/1.1 200"), `a body that stalls after the answer does not hold the connection: ${JSON.stringify(stalledBody)}`);
  check(silent.end === "closed" && silent.data === "", `a silent connection is closed: ${JSON.stringify(silent)}`);
  check(slowHead.end === "closed" && slowHead.data === "", `a head sent a line at a time is closed: ${JSON.stringify(slowHead)}`);
  check(keptAlive.end === "closed" && keptAlive.data.startsWith("HTTP/1.1 200"), `an idle keep-alive connection is closed after its answer: ${JSON.stringify(keptAlive.data.slice(0, 40))}`);
  // The deadline is for the client's head and idle time, never for the answer.
  check(
    slowAnswer.end === "closed" && slowAnswer.data.startsWith("HTTP/1.1 200") && slowAnswer.data.endsWith("done"),
    `a 2.5 s answer on a 1 s idle timeout is delivered: ${JSON.stringify(slowAnswer.data.slice(0, 40))}`,
  );
}

/** An absolute-form target's authority reaches the handler as ConnInfo.authority (RFC 9112 §3.2.2). */
async function absoluteForm() {
  const server = await runtime.serve({ hostname: "127.0.0.1", port: 0, handler: (req, info) => Response.json({ url: req.url, authority: info.authority ?? null }) });
  servers.push(server);
  const ask = async (target: string) => {
    const { data } = await rawClient(server.port, (s) => s.write(`GET ${target} HTTP/1.1\r\nHost: open.test\r\nConnection: close\r\n\r\n`), 5000);
    return JSON.parse(data.slice(data.indexOf("\r\n\r\n") + 4));
  };
  const absolute = await ask("http://api.test/x?y");
  check(absolute.authority === "api.test", `absolute-form authority: ${JSON.stringify(absolute)}`);
  const origin = await ask("/x");
  check(origin.authority === null && origin.url === "http://open.test/x", `origin-form has no authority: ${JSON.stringify(origin)}`);
}

/**
 * Aborting a connection Deno is already closing throws BadResource from Deno's own abort
 * listener, reported as an uncaught error that would end this process; the deadlines swallow
 * that one report. A listener that throws the same way stands in for Deno's.
 */
async function abortRace() {
  const deadlines = new ConnectionDeadlines(30);
  const c = deadlines.add();
  let end!: () => void;
  c.served({ finished: new Promise<void>((r) => (end = r)), shutdown: async () => {} });
  c.signal.addEventListener("abort", () => {
    const e = new Error("Bad resource ID");
    e.name = "BadResource";
    throw e;
  });
  const stopped = deadlines.stop(true);
  end();
  await stopped;
  await new Promise((r) => setTimeout(r, 50));
  check(c.signal.aborted, "the connection was aborted and this process is still running");
}

/** stop() lets a request in flight finish and refuses new connections; stop(true) cuts it. */
async function gracefulStop() {
  const start = () => runtime.serve({ hostname: "127.0.0.1", port: 0, handler: async () => (await new Promise((r) => setTimeout(r, 800)), new Response("finished")) });
  const graceful = await start();
  const inFlight = fetch(`http://127.0.0.1:${graceful.port}/`).then((r) => r.text());
  await new Promise((r) => setTimeout(r, 200));
  await graceful.stop();
  check((await inFlight) === "finished", "graceful stop delivers the answer in flight");
  check(await fails(fetch(`http://127.0.0.1:${graceful.port}/`)), "no new connection after stop");
  const forced = await start();
  const cut = fetch(`http://127.0.0.1:${forced.port}/`).then((r) => r.text());
  await new Promise((r) => setTimeout(r, 200));
  await forced.stop(true);
  check(await cut.then(() => false, () => true), "stop(true) cuts the request in flight");
}

let code = 0;
try {
  await main();
  console.log("ok");
} catch (err) {
  console.log(`FAIL ${(err as Error).stack ?? err}`);
  code = 1;
} finally {
  await Promise.all(servers.map((s) => s.stop(true)));
  rmSync(dir, { recursive: true, force: true });
}
runtime.exit(code);
