// The access log and the request id / trace context, through the whole gateway against a real
// backend: one line per request (refused ones and the OAuth endpoints too) with exactly the
// documented fields, written when the response has ended; what the backend receives.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer as createHttpServer, type ServerResponse } from "node:http";
import { createServer } from "node:net";
import { addLogTap } from "../../src/log.ts";
import { setAccessLogSink } from "../../src/monitoring/access-log.ts";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { basic, buildGateway, type TestGateway } from "../helpers/gateway.ts";

const FIELDS = ["time", "event", "requestId", "method", "host", "path", "status", "durationMs", "bytesIn", "bytesOut", "clientIp", "route", "target", "clientId", "error", "upstreamMs"].sort();
const SECRET = "al-secret-value-42";
const QUERY_VALUE = "query-value-do-not-log";

let be: EchoBackend;
let closedPort = 0;
// A backend that sends its headers and a first chunk, then nothing until the test ends.
const stalled: ServerResponse[] = [];
const stall = createHttpServer((_req, res) => {
  stalled.push(res);
  res.writeHead(200, { "content-type": "application/octet-stream" });
  res.write(Buffer.alloc(32 * 1024, 120));
});
let g: TestGateway;
const lines: Record<string, unknown>[] = [];
let previous: ((line: string) => void) | null = null;

beforeAll(async () => {
  be = await startEchoBackend();
  await new Promise<void>((r) => stall.listen(0, "127.0.0.1", r));
  // A port nothing listens on: taken, then freed.
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  closedPort = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  previous = setAccessLogSink((line) => {
    lines.push(JSON.parse(line) as Record<string, unknown>);
    previous?.(line);
  });
  g = buildGateway(`
server:
  trustedProxies: [10.0.0.0/8]
routes:
  - id: al-open
    frontend: { domains: [open.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
  - id: al-keyed
    frontend: { domains: [keyed.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
    plugins: [{ plugin: Apikeys }]
  - id: al-failover
    frontend: { domains: [failover.test] }
    backend:
      targets: [{ hostname: 127.0.0.1, port: ${closedPort} }, { hostname: 127.0.0.1, port: ${be.port} }]
      client: { retries: 1 }
  - id: al-stall
    frontend: { domains: [stall.test] }
    backend:
      targets: [{ hostname: 127.0.0.1, port: ${(stall.address() as { port: number }).port} }]
      client: { idleTimeout: 300 }
apikeys:
  - { clientId: al-app, clientSecret: ${SECRET} }
`);
});
afterAll(async () => {
  setAccessLogSink(previous);
  g.close();
  await be.stop();
  for (const r of stalled) r.destroy();
  stall.closeAllConnections();
  await new Promise<void>((r) => stall.close(() => r()));
});

/** The access line of the response just read (its X-Request-Id names it). */
function lineOf(res: Response): Record<string, unknown> {
  const id = res.headers.get("x-request-id");
  const found = lines.filter((l) => l.requestId === id);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe("access log", () => {
  test("a proxied call: every field, exactly, and no query value", async () => {
    const res = await g.call(`http://open.test/a/b?token=${QUERY_VALUE}&x=1`, { method: "POST", body: "hello" }, { remoteAddress: "10.0.0.5" });
    const echo = (await res.json()) as EchoBody;
    expect(res.status).toBe(200);
    const l = lineOf(res);
    expect(Object.keys(l).sort()).toEqual(FIELDS);
    expect(l).toMatchObject({
      event: "access",
      method: "POST",
      host: "open.test",
      path: "/a/b",
      status: 200,
      bytesIn: 5,
      route: "al-open",
      target: `127.0.0.1:${be.port}`,
      clientId: null,
      error: null,
      clientIp: "10.0.0.5",
    });
    expect(l.bytesOut).toBe(Number(res.headers.get("content-length")));
    expect(new Date(l.time as string).toISOString()).toBe(l.time as string);
    expect(typeof l.durationMs).toBe("number");
    expect(l.upstreamMs as number).toBeGreaterThanOrEqual(0);
    expect(l.upstreamMs as number).toBeLessThanOrEqual(l.durationMs as number);
    expect(JSON.stringify(l)).not.toContain(QUERY_VALUE);
    expect(echo.query).toContain(QUERY_VALUE);
  });

  test("clientIp is the first untrusted X-Forwarded-For hop from a trusted proxy, the peer otherwise", async () => {
    const viaProxy = await g.call("http://open.test/x", { headers: { "x-forwarded-for": "198.51.100.7, 10.0.0.9" } }, { remoteAddress: "10.0.0.5" });
    await viaProxy.arrayBuffer();
    expect(lineOf(viaProxy).clientIp).toBe("198.51.100.7");
    const direct = await g.call("http://open.test/x", { headers: { "x-forwarded-for": "198.51.100.7" } }, { remoteAddress: "203.0.113.4" });
    await direct.arrayBuffer();
    expect(lineOf(direct).clientIp).toBe("203.0.113.4");
  });

  test("refusals: no route (route null), no key (401, error code), and the caller's client id", async () => {
    const none = await g.call("http://nowhere.test/p?q=" + QUERY_VALUE);
    await none.arrayBuffer();
    expect(lineOf(none)).toMatchObject({ status: 404, route: null, target: null, error: "ERR_ROUTE_NOT_FOUND", upstreamMs: null, path: "/p" });
    expect(lineOf(none).bytesOut).toBe(JSON.stringify({ "Otoroshi-Error": "No route found" }).length);

    const nokey = await g.call("http://keyed.test/k");
    await nokey.arrayBuffer();
    expect(lineOf(nokey)).toMatchObject({ status: 401, route: "al-keyed", target: null, clientId: null, error: "ERR_APIKEY_MISSING" });

    const ok = await g.call("http://keyed.test/k", { headers: { authorization: basic("al-app", SECRET) } });
    await ok.arrayBuffer();
    const l = lineOf(ok);
    expect(l).toMatchObject({ status: 200, route: "al-keyed", clientId: "al-app" });
    expect(JSON.stringify(l)).not.toContain(SECRET);
    expect(JSON.stringify(l)).not.toContain(basic("al-app", SECRET).slice(6));

    const wrong = await g.call("http://keyed.test/k", { headers: { authorization: basic("al-app", "not-the-secret") } });
    await wrong.arrayBuffer();
    expect(lineOf(wrong)).toMatchObject({ status: 401, clientId: null, error: "ERR_APIKEY_INVALID" });
  });

  test("a streamed body is logged when it has been read, with its size", async () => {
    const n = 300_000;
    const before = lines.length;
    const res = await g.call(`http://open.test/bytes/${n}?chunked=1`);
    const id = res.headers.get("x-request-id");
    // Headers are here, the body is not read: no line yet.
    expect(lines.slice(before).some((l) => l.requestId === id)).toBe(false);
    expect((await res.arrayBuffer()).byteLength).toBe(n);
    expect(lineOf(res)).toMatchObject({ status: 200, bytesOut: n, route: "al-open" });
  });

  test("a client that leaves mid-body is logged as 499", async () => {
    const res = await g.call(`http://open.test/bytes/${5_000_000}?chunked=1`);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    const l = lineOf(res);
    expect(l.status).toBe(499);
    expect(l.bytesOut as number).toBeLessThan(5_000_000);
  });

  test("after a failover, target names the target that answered", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await g.call("http://failover.test/f");
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      expect(lineOf(res)).toMatchObject({ status: 200, route: "al-failover", target: `127.0.0.1:${be.port}`, error: null });
    }
  });

  test("a body cut by backend.client.idleTimeout: the line names the timeout, and so does the log line, with the request id", async () => {
    const logged: Record<string, unknown>[] = [];
    const untap = addLogTap((line) => logged.push(JSON.parse(line) as Record<string, unknown>));
    try {
      const res = await g.call("http://stall.test/s");
      expect(res.status).toBe(200);
      const err = await res.arrayBuffer().then(() => null, (e: unknown) => e);
      expect(err).not.toBeNull();
      const l = lineOf(res);
      expect(l).toMatchObject({ status: 200, route: "al-stall", error: "ERR_UPSTREAM_TIMEOUT" });
      expect(l.bytesOut as number).toBeGreaterThanOrEqual(32 * 1024);
      expect(logged.filter((x) => x.event === "request.stream_timeout").map((x) => x.requestId)).toEqual([res.headers.get("x-request-id")]);
    } finally {
      untap();
    }
  });

  test("any text a client sends stays one valid JSON line", async () => {
    const before = lines.length;
    const weird = 'a"b\\c\u00e9';
    const res = await g.call("http://open.test/q", { headers: { host: weird, "x-forwarded-for": `${weird}, 10.0.0.9` } }, { remoteAddress: "10.0.0.5" });
    await res.arrayBuffer();
    expect(lines.length).toBe(before + 1);
    expect(lines.at(-1)).toMatchObject({ host: weird, clientIp: weird, status: 404 });
  });

  test("a credential pasted into the path is masked, as in every log line", async () => {
    const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXZhbHVl";
    const bearer = `otoapk_al-app_${"ab".repeat(32)}`;
    const res = await g.call(`http://open.test/reset/${jwt}/${bearer}`);
    await res.arrayBuffer();
    const l = lineOf(res);
    expect(l.path).toBe("/reset/[redacted jwt]/otoapk_al-app_[redacted]");
    expect(JSON.stringify(l)).not.toContain("c2lnbmF0dXJlLXZhbHVl");
  });

  test("HEAD and the gateway's own endpoints are logged too", async () => {
    const head = await g.call("http://open.test/h", { method: "HEAD" });
    expect(lineOf(head)).toMatchObject({ method: "HEAD", status: 200, bytesOut: 0 });
    const status = await g.call("http://open.test/.well-known/otoroshi/status");
    await status.arrayBuffer();
    expect(lineOf(status)).toMatchObject({ status: 200, route: null, path: "/.well-known/otoroshi/status" });
  });
});

describe("request id", () => {
  const idOf = (echo: EchoBody) => echo.headers.filter(([k]) => k === "x-request-id").map(([, v]) => v);

  test("a well-formed incoming id is kept: backend, response and access line", async () => {
    const kept = await g.call("http://open.test/r", { headers: { "x-request-id": "abc.DEF_-:9" } });
    const echo = (await kept.json()) as EchoBody;
    expect(kept.headers.get("x-request-id")).toBe("abc.DEF_-:9");
    expect(idOf(echo)).toEqual(["abc.DEF_-:9"]);
    expect(lineOf(kept).requestId).toBe("abc.DEF_-:9");
  });

  test("anything else is replaced by a generated id, the same everywhere; no spelling of it passes", async () => {
    for (const bad of ["", "x".repeat(129), "a b", "a/b", "é"]) {
      const res = await g.call("http://open.test/r", { headers: { "x-request-id": bad, x_request_id: "smuggled" } });
      const echo = (await res.json()) as EchoBody;
      const id = res.headers.get("x-request-id")!;
      expect(id).toMatch(/^[A-Za-z0-9._:-]{1,128}$/);
      expect(id).not.toBe(bad);
      expect(idOf(echo)).toEqual([id]);
      expect(echo.headers.some(([k, v]) => k !== "x-request-id" && v === "smuggled")).toBe(false);
    }
    const a = await g.call("http://open.test/r");
    const b = await g.call("http://open.test/r");
    await a.arrayBuffer();
    await b.arrayBuffer();
    expect(a.headers.get("x-request-id")).not.toBe(b.headers.get("x-request-id"));
  });

  test("refusals carry the id too, and their log lines name it", async () => {
    const res = await g.call("http://open.test/r", { method: "TRACE" });
    await res.arrayBuffer();
    expect(res.status).toBe(405);
    expect(res.headers.get("x-request-id")).toMatch(/^[A-Za-z0-9._:-]+$/);
  });
});

describe("trace context", () => {
  const header = (echo: EchoBody, name: string) => echo.headers.filter(([k]) => k === name).map(([, v]) => v);
  const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

  test("no traceparent: the backend gets a new valid one, and no tracestate", async () => {
    const echo = (await (await g.call("http://open.test/t", { headers: { tracestate: "a=1" } })).json()) as EchoBody;
    const [tp] = header(echo, "traceparent");
    expect(tp).toMatch(TP);
    expect(tp).not.toContain("00000000000000000000000000000000");
    expect(header(echo, "tracestate")).toEqual([]);
  });

  test("a valid one keeps its trace id and sampled flag, with a new parent id; tracestate passes", async () => {
    const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const echo = (await (await g.call("http://open.test/t", { headers: { traceparent: incoming, tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" } })).json()) as EchoBody;
    const m = TP.exec(header(echo, "traceparent")[0]!)!;
    expect(m[1]).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(m[2]).not.toBe("00f067aa0ba902b7");
    expect(m[3]).toBe("01");
    expect(header(echo, "tracestate")).toEqual(["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]);
  });

  test("invalid ones are replaced (and their tracestate dropped)", async () => {
    for (
      const bad of [
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "garbage",
      ]
    ) {
      const echo = (await (await g.call("http://open.test/t", { headers: { traceparent: bad, tracestate: "a=1" } })).json()) as EchoBody;
      const tps = header(echo, "traceparent");
      expect(tps).toHaveLength(1);
      expect(tps[0]).toMatch(TP);
      expect(tps[0]).not.toContain("4bf92f3577b34da6a3ce929d0e0e4736");
      expect(header(echo, "tracestate")).toEqual([]);
    }
  });
});
