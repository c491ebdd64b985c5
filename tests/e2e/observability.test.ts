// Access log, request ids, trace context and metrics seen from outside: the real gateway process
// (binary, Deno or Bun per OTOROSHI_E2E_RUNTIME) on 127.0.0.1, a real backend, real traffic. The
// access lines are read from the process's stdout (or its file), the metrics from its endpoint,
// and both must agree with the traffic sent, exactly.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { connect } from "node:net";
import { join } from "node:path";
import { generateKeyPairPem } from "../../src/keys/generate.ts";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { rawExchange } from "../helpers/raw-client.ts";
import { recordSecret } from "../helpers/secrets.ts";
import { closed, nextMessage, openWs, startWsBackend } from "../helpers/ws-backend.ts";
import { parseExposition, promtoolCheck } from "../unit/monitoring/prom.ts";
import { type GatewayProcess, runCli, startGateway } from "./process.ts";

const TIMEOUT = 60_000;
const SECRET = "obs-e2e-secret-5d1c9a";
const QUERY_VALUE = "obs-query-value-77e2";
const FIELDS = ["time", "event", "requestId", "method", "host", "path", "status", "durationMs", "bytesIn", "bytesOut", "clientIp", "route", "target", "clientId", "error", "upstreamMs"].sort();
const indent = (pem: string) => pem.trim().split("\n").join("\n      ");
const basic = (id: string, secret: string) => "Basic " + Buffer.from(`${id}:${secret}`).toString("base64");

let be: EchoBackend;
beforeAll(async () => {
  be = await startEchoBackend();
});
afterAll(async () => {
  await be.stop();
});
const gateways: GatewayProcess[] = [];
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((g) => g.stop()));
});

const config = (extra = "  accessLog: { enabled: true }") => `
server:
${extra}
plugins:
  - plugin: ClientCredentialService
    config: { domain: 'oauth\\.test', secure: false, defaultKeyPair: obs-sig }
routes:
  - id: obs-open
    frontend: { domains: [open.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
  - id: obs-keyed
    frontend: { domains: [keyed.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
  - { clientId: obs-app, clientSecret: ${SECRET}, dailyQuota: 2 }
keypairs:
  - id: obs-sig
    privateKey: |
      ${indent(generateKeyPairPem("ES256").privateKeyPem)}
`;

/** Waits (bounded in time) until pred holds. */
async function until(pred: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function send(g: GatewayProcess, host: string, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("host", host);
  const res = await fetch(g.url + path, { ...init, headers });
  await res.clone().arrayBuffer();
  return res;
}

describe("observability on the running gateway", () => {
  test(
    "access lines on stdout and the metrics agree with the traffic, exactly; promtool accepts them",
    async () => {
      const g = await startGateway(config());
      gateways.push(g);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await send(g, "open.test", `/a?token=${QUERY_VALUE}`)).status);
      statuses.push((await send(g, "open.test", "/status/503")).status);
      statuses.push((await send(g, "keyed.test", "/k")).status);
      for (let i = 0; i < 3; i++) statuses.push((await send(g, "keyed.test", "/k", { headers: { authorization: basic("obs-app", SECRET) } })).status);
      statuses.push((await send(g, "nowhere.test", "/n")).status);
      const token = await send(g, "oauth.test", "/.well-known/otoroshi/oauth/token", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("obs-app", SECRET) },
        body: "grant_type=client_credentials",
      });
      statuses.push(token.status);
      recordSecret(((await token.json()) as { access_token: string }).access_token);
      expect(statuses).toEqual([200, 200, 200, 503, 401, 200, 200, 429, 404, 200]);
      // A method outside the standard set (fetch cannot send one: a raw request can).
      const frob = await rawExchange(g.port, "FROB /frob HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n");
      // Bun's listener drops a method it does not know before the gateway sees it (no answer, no
      // line); Deno's hands it over: refused (no route), and counted under method="other".
      const frobServed = frob.status !== 0;
      if (frobServed) expect(frob.status).toBe(404);
      const sent = statuses.length + (frobServed ? 1 : 0);

      await until(() => g.access.length >= sent, `${sent} access lines`);
      const lines = g.access;
      expect(lines).toHaveLength(sent);
      for (const l of lines) {
        expect(Object.keys(l).sort()).toEqual(FIELDS);
        expect(l.event).toBe("access");
        expect(JSON.stringify(l)).not.toContain(QUERY_VALUE);
        expect(JSON.stringify(l)).not.toContain(SECRET);
      }
      const count = (route: string | null, status: number) => lines.filter((l) => l.route === route && l.status === status).length;
      expect(count("obs-open", 200)).toBe(3);
      expect(count("obs-open", 503)).toBe(1);
      expect(count("obs-keyed", 401)).toBe(1);
      expect(count("obs-keyed", 200)).toBe(2);
      expect(count("obs-keyed", 429)).toBe(1);
      expect(count(null, 404)).toBe(frobServed ? 2 : 1);
      expect(count(null, 200)).toBe(1);
      expect(lines.find((l) => l.status === 429)).toMatchObject({ clientId: "obs-app", error: "ERR_QUOTA_EXCEEDED", route: "obs-keyed" });
      expect(lines.find((l) => l.status === 503)).toMatchObject({ target: `127.0.0.1:${be.port}`, error: null, path: "/status/503" });
      expect(lines.find((l) => l.status === 503)!.upstreamMs).toBeNumber();
      expect(lines.find((l) => l.status === 404 && l.method === "GET")).toMatchObject({ route: null, target: null, upstreamMs: null, error: "ERR_ROUTE_NOT_FOUND", clientIp: "127.0.0.1" });
      // The other logs stay on stderr: no access line there, no other event on stdout.
      expect(g.logs.some((l) => l.event === "access")).toBe(false);

      const res = await fetch(`${g.url}/.well-known/otoroshi/monitoring/metrics`);
      expect(res.status).toBe(200);
      const text = await res.text();
      const m = parseExposition(text);
      const req = (route: string, method: string, status: string) => m.get("otoroshi_requests_total", { route, method, status });
      expect(req("obs-open", "GET", "200")).toBe(3);
      expect(req("obs-open", "GET", "503")).toBe(1);
      expect(req("_unmatched", "other", "404")).toBe(frobServed ? 1 : undefined);
      expect(req("obs-keyed", "GET", "401")).toBe(1);
      expect(req("obs-keyed", "GET", "200")).toBe(2);
      expect(req("obs-keyed", "GET", "429")).toBe(1);
      expect(req("_unmatched", "GET", "404")).toBe(1);
      expect(req("_oauth", "POST", "200")).toBe(1);
      expect(m.get("otoroshi_request_duration_seconds_count", { route: "obs-open" })).toBe(4);
      expect(m.get("otoroshi_request_duration_seconds_bucket", { route: "obs-keyed", le: "+Inf" })).toBe(4);
      expect(m.get("otoroshi_auth_failures_total", { route: "obs-keyed", reason: "missing" })).toBe(1);
      expect(m.get("otoroshi_quota_rejections_total", { kind: "quota" })).toBe(1);
      expect(m.get("otoroshi_tokens_issued_total", { alg: "ES256" })).toBe(1);
      expect(m.get("otoroshi_target_healthy", { route: "obs-open", target: `127.0.0.1:${be.port}` })).toBe(1);
      expect(m.get("otoroshi_config_generation")).toBe(1);
      expect(m.get("otoroshi_inflight_requests")).toBe(1);
      expect(m.get("otoroshi_websockets_open")).toBe(0);
      for (const name of ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_start_time_seconds"]) expect(m.get(name)!).toBeGreaterThan(0);
      const checked = promtoolCheck(text);
      if (checked === null) console.warn("notice: promtool not found (Debian package prometheus); skipping `promtool check metrics`");
      else expect(checked).toEqual({ code: 0, output: "" });
    },
    TIMEOUT,
  );

  test(
    "the backend sees the request id and a traceparent continuing the client's trace; the client gets the id back",
    async () => {
      const g = await startGateway(config());
      gateways.push(g);
      const res = await send(g, "open.test", "/t", {
        headers: { "x-request-id": "client-id-1", traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "congo=t61rcWkgMzE" },
      });
      const echo = (await res.json()) as EchoBody;
      const h = (name: string) => echo.headers.filter(([k]) => k === name).map(([, v]) => v);
      expect(res.headers.get("x-request-id")).toBe("client-id-1");
      expect(h("x-request-id")).toEqual(["client-id-1"]);
      expect(h("traceparent")[0]).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-(?!b7ad6b7169203331)[0-9a-f]{16}-01$/);
      expect(h("tracestate")).toEqual(["congo=t61rcWkgMzE"]);
      const fresh = await send(g, "open.test", "/t", { headers: { "x-request-id": "bad id with spaces" } });
      const echo2 = (await fresh.json()) as EchoBody;
      const id = fresh.headers.get("x-request-id")!;
      expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
      expect(echo2.headers.filter(([k]) => k === "x-request-id")).toEqual([["x-request-id", id]]);
      expect(echo2.headers.find(([k]) => k === "traceparent")![1]).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      await until(() => g.access.length >= 2, "2 access lines");
      expect(g.access.map((l) => l.requestId)).toEqual(["client-id-1", id]);
    },
    TIMEOUT,
  );

  test(
    "a WebSocket upgrade: the 101 carries the request id, the backend gets it and a traceparent, one access line with 101",
    async () => {
      const wsb = startWsBackend();
      try {
        const g = await startGateway(`
routes:
  - id: obs-ws
    frontend: { domains: [127.0.0.1/ws] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${wsb.port} }] }
`);
        gateways.push(g);
        // The 101's own header fields, read from a raw handshake.
        const head = await new Promise<string>((resolve, reject) => {
          const sock = connect(
            g.port,
            "127.0.0.1",
            () =>
              sock.write(
                "GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Request-Id: ws-raw-1\r\n\r\n",
              ),
          );
          let got = "";
          const timer = setTimeout(() => (sock.destroy(), reject(new Error("no 101 within 10 s"))), 10_000);
          sock.on("data", (d) => {
            got += d.toString("latin1");
            const end = got.indexOf("\r\n\r\n");
            if (end >= 0) {
              clearTimeout(timer);
              sock.destroy();
              resolve(got.slice(0, end));
            }
          });
          sock.on("error", reject);
        });
        expect(head.toLowerCase()).toContain("\r\nx-request-id: ws-raw-1");
        if (!head.startsWith("HTTP/1.1 101")) {
          // A listener that cannot take a WebSocket over (501): the refusal is logged like any other.
          expect(head).toStartWith("HTTP/1.1 501");
          await until(() => g.access.length >= 1, "1 access line");
          expect(g.access[0]).toMatchObject({ status: 501, route: "obs-ws", requestId: "ws-raw-1", error: "ERR_WEBSOCKET_UNSUPPORTED" });
          return;
        }
        const ws = await openWs(`ws://127.0.0.1:${g.port}/ws/echo`);
        ws.send("seen");
        const seen = JSON.parse(String(await nextMessage(ws))) as { headers: Record<string, string> };
        ws.close(1000, "bye");
        await closed(ws);
        expect(seen.headers["x-request-id"]).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
        expect(seen.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
        await until(() => g.access.length >= 2, "2 access lines");
        expect(g.access.map((l) => [l.status, l.route, l.requestId, l.bytesOut])).toEqual([
          [101, "obs-ws", "ws-raw-1", 0],
          [101, "obs-ws", seen.headers["x-request-id"], 0],
        ]);
        const m = parseExposition(await (await fetch(`${g.url}/.well-known/otoroshi/monitoring/metrics`)).text());
        expect(m.get("otoroshi_requests_total", { route: "obs-ws", method: "GET", status: "101" })).toBe(2);
      } finally {
        wsb.stop();
      }
    },
    TIMEOUT,
  );

  test(
    "a client that leaves in the middle of a large body: one line with 499, nothing left in flight",
    async () => {
      const g = await startGateway(config());
      gateways.push(g);
      await new Promise<void>((resolve, reject) => {
        const sock = connect(g.port, "127.0.0.1", () => sock.write("GET /bytes/50000000?chunked=1 HTTP/1.1\r\nHost: open.test\r\n\r\n"));
        let got = 0;
        const timer = setTimeout(() => (sock.destroy(), reject(new Error("no body within 10 s"))), 10_000);
        sock.on("data", (d) => {
          got += d.length;
          // Headers and some of the body are here: leave.
          if (got > 256 * 1024) {
            clearTimeout(timer);
            sock.destroy();
            resolve();
          }
        });
        sock.on("error", reject);
      });
      await until(() => g.access.length >= 1, "the access line");
      const l = g.access[0]!;
      expect(l).toMatchObject({ status: 499, route: "obs-open", path: "/bytes/50000000" });
      expect(l.bytesOut as number).toBeGreaterThan(0);
      expect(l.bytesOut as number).toBeLessThan(50_000_000);
      const m = parseExposition(await (await fetch(`${g.url}/.well-known/otoroshi/monitoring/metrics`)).text());
      expect(m.get("otoroshi_requests_total", { route: "obs-open", method: "GET", status: "499" })).toBe(1);
      expect(m.get("otoroshi_inflight_requests")).toBe(1);
    },
    TIMEOUT,
  );

  test(
    "server.accessLog.file: lines go to the file; after a rename and SIGUSR1 they go to a new file",
    async () => {
      const g = await startGateway(config("  accessLog: { file: access.log }"));
      gateways.push(g);
      const file = join(g.dir, "access.log");
      for (let i = 0; i < 2; i++) expect((await send(g, "open.test", "/before")).status).toBe(200);
      await until(() => existsSync(file) && readFileSync(file, "utf8").split("\n").filter(Boolean).length === 2, "2 lines in access.log");
      renameSync(file, file + ".1");
      g.proc.kill("SIGUSR1");
      await g.waitForLog((l) => l.event === "accesslog.reopened");
      expect((await send(g, "open.test", "/after")).status).toBe(200);
      await until(() => existsSync(file) && readFileSync(file, "utf8").length > 0, "a line in the new access.log");
      const parse = (f: string) => readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(parse(file + ".1").map((l) => l.path)).toEqual(["/before", "/before"]);
      expect(parse(file).map((l) => l.path)).toEqual(["/after"]);
      // Nothing on stdout when a file is configured; the process is still serving.
      expect(g.access).toEqual([]);
      expect(g.proc.exitCode).toBeNull();
    },
    TIMEOUT,
  );

  test(
    "an access log file that cannot be opened: check and start both say where, with file:line:col",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "oto-al-"));
      try {
        const file = join(dir, "otoroshi.yaml");
        writeFileSync(file, "server:\n  accessLog:\n    file: missing-dir/access.log\n");
        const expected = `${file}:3:11 server.accessLog.file: cannot open the access log file for appending (ENOENT)`;
        const checked = await runCli(["check", "--config", file]);
        expect(checked.code).toBe(1);
        expect(checked.stderr).toContain(expected);
        const started = await runCli(["--config", file, "--port", "0"]);
        expect(started.code).toBe(1);
        expect(started.stderr).toContain(expected);
        expect(existsSync(join(dir, "missing-dir"))).toBe(false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    TIMEOUT,
  );
});
