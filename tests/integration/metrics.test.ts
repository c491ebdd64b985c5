// GET /.well-known/otoroshi/monitoring/metrics after real traffic through the whole gateway:
// exact counts per route, method and status, the histogram's buckets, the error families, label
// values a client cannot choose, and `promtool check metrics` on the output. Counters are
// process-wide, so each test reads the difference its own requests made.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { generateKeyPairPem } from "../../src/keys/generate.ts";
import { BUCKETS } from "../../src/monitoring/metrics.ts";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { basic, buildGateway, type TestGateway } from "../helpers/gateway.ts";
import { type Exposition, parseExposition, promtoolCheck } from "../unit/monitoring/prom.ts";

const indent = (pem: string) => pem.trim().split("\n").join("\n      ");
const es = generateKeyPairPem("ES256").privateKeyPem;
let be: EchoBackend;
let closedPort = 0;
let g: TestGateway;

const yaml = (perClient: boolean) => `
server:
  monitoring: { perClientMetrics: ${perClient} }
plugins:
  - plugin: ClientCredentialService
    config: { domain: 'oauth\\.test', secure: false, defaultKeyPair: m-sig }
routes:
  - id: m-open
    frontend: { domains: [open.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }, { hostname: localhost, port: ${be.port} }] }
  - id: m-keyed
    frontend: { domains: [keyed.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
    plugins: [{ plugin: Apikeys }]
  - id: m-down
    frontend: { domains: [down.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${closedPort} }] }
  - id: m-off
    enabled: false
    frontend: { domains: [off.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: 1 }] }
apikeys:
  - { clientId: m-app, clientSecret: m-app-secret-1 }
keypairs:
  - id: m-sig
    privateKey: |
      ${indent(es)}
`;

async function scrape(info = {}): Promise<{ res: Response; text: string; m: Exposition }> {
  const res = await g.call("http://any.test/.well-known/otoroshi/monitoring/metrics", {}, info);
  const text = await res.text();
  return { res, text, m: parseExposition(text) };
}

async function call(url: string, init: RequestInit = {}): Promise<number> {
  const res = await g.call(url, init);
  await res.arrayBuffer();
  return res.status;
}

beforeAll(async () => {
  be = await startEchoBackend();
  // A port nothing listens on: taken, then freed.
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  closedPort = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  g = buildGateway(yaml(false));
});
afterAll(async () => {
  g.close();
  await be.stop();
});

describe("metrics", () => {
  test("exact counts per route, method and status, and the histogram's buckets", async () => {
    const before = (await scrape()).m;
    for (let i = 0; i < 3; i++) expect(await call("http://open.test/a")).toBe(200);
    expect(await call("http://open.test/status/503")).toBe(503);
    expect(await call("http://open.test/a", { method: "POST", body: "x" })).toBe(200);
    expect(await call("http://keyed.test/a")).toBe(401);
    expect(await call("http://keyed.test/a", { headers: { authorization: basic("m-app", "wrong-secret-1") } })).toBe(401);
    expect(await call("http://keyed.test/a", { headers: { authorization: basic("m-app", "m-app-secret-1") } })).toBe(200);
    expect(await call("http://down.test/a")).toBe(502);
    const { m, res } = await scrape();
    expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
    expect(m.get("otoroshi_requests_total", { route: "m-open", method: "GET", status: "200" })).toBe(3);
    expect(m.get("otoroshi_requests_total", { route: "m-open", method: "GET", status: "503" })).toBe(1);
    expect(m.get("otoroshi_requests_total", { route: "m-open", method: "POST", status: "200" })).toBe(1);
    expect(m.get("otoroshi_requests_total", { route: "m-keyed", method: "GET", status: "401" })).toBe(2);
    expect(m.get("otoroshi_requests_total", { route: "m-keyed", method: "GET", status: "200" })).toBe(1);
    expect(m.get("otoroshi_requests_total", { route: "m-down", method: "GET", status: "502" })).toBe(1);
    expect(m.all("otoroshi_requests_total", { route: "m-off" })).toEqual([]);
    // Histogram: cumulative buckets, +Inf = count = this route's requests.
    const buckets = m.all("otoroshi_request_duration_seconds_bucket", { route: "m-open" });
    expect(buckets.map((b) => b.labels.le)).toEqual([...BUCKETS.map(String), "+Inf"]);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    expect(buckets.at(-1)!.value).toBe(5);
    expect(m.get("otoroshi_request_duration_seconds_count", { route: "m-open" })).toBe(5);
    expect(m.get("otoroshi_request_duration_seconds_sum", { route: "m-open" })!).toBeGreaterThan(0);
    // Error families.
    expect(m.get("otoroshi_upstream_errors_total", { route: "m-down", kind: "refused" })).toBe(1);
    expect(m.get("otoroshi_auth_failures_total", { route: "m-keyed", reason: "missing" })).toBe(1);
    expect(m.get("otoroshi_auth_failures_total", { route: "m-keyed", reason: "invalid" })).toBe(1);
    // The scrape before counted itself under _internal.
    const internal = (x: Exposition) => x.get("otoroshi_requests_total", { route: "_internal", method: "GET", status: "200" }) ?? 0;
    expect(internal(m) - internal(before)).toBe(1);
  });

  test("a client cannot create series: unknown hosts, methods and paths fall into fixed labels", async () => {
    const before = (await scrape()).m;
    const sum = (x: Exposition, labels: Record<string, string>) => x.all("otoroshi_requests_total", labels).reduce((a, s) => a + s.value, 0);
    const series = before.samples.length;
    expect(await call("http://random-1234.test/x")).toBe(404);
    expect(await call("http://random-5678.test/y")).toBe(404);
    const { m } = await scrape();
    expect(sum(m, { route: "_unmatched", status: "404" }) - sum(before, { route: "_unmatched", status: "404" })).toBe(2);
    const text = m.samples.map((s) => JSON.stringify(s)).join("\n");
    for (const v of ["random-1234", "/x"]) expect(text).not.toContain(v);
    // At most: the new method series, the _unmatched 404 (and its histogram) if new, the scrape's own.
    expect(m.samples.length - series).toBeLessThanOrEqual(20);
  });

  test("tokens issued by algorithm, targets, config families, process_* families", async () => {
    const before = (await scrape()).m;
    const res = await g.call("http://oauth.test/.well-known/otoroshi/oauth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("m-app", "m-app-secret-1") },
      body: "grant_type=client_credentials",
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const { m } = await scrape();
    expect((m.get("otoroshi_tokens_issued_total", { alg: "ES256" }) ?? 0) - (before.get("otoroshi_tokens_issued_total", { alg: "ES256" }) ?? 0)).toBe(1);
    expect(
      (m.get("otoroshi_requests_total", { route: "_oauth", method: "POST", status: "200" }) ?? 0) - (before.get("otoroshi_requests_total", { route: "_oauth", method: "POST", status: "200" }) ?? 0),
    ).toBe(1);
    expect(m.all("otoroshi_target_healthy").filter((s) => s.labels.route?.startsWith("m-"))).toEqual([
      { name: "otoroshi_target_healthy", labels: { route: "m-open", target: `127.0.0.1:${be.port}` }, value: 1 },
      { name: "otoroshi_target_healthy", labels: { route: "m-open", target: `localhost:${be.port}` }, value: 1 },
      { name: "otoroshi_target_healthy", labels: { route: "m-keyed", target: `127.0.0.1:${be.port}` }, value: 1 },
      { name: "otoroshi_target_healthy", labels: { route: "m-down", target: `127.0.0.1:${closedPort}` }, value: 1 },
    ]);
    expect(m.get("otoroshi_config_generation")).toBe(g.store.current().generation);
    expect(m.get("otoroshi_config_last_reload_timestamp_seconds")).toBe(Date.parse(g.store.current().loadedAt) / 1000);
    // This scrape at least (other tests in the process may leave responses unread).
    expect(m.get("otoroshi_inflight_requests")!).toBeGreaterThanOrEqual(1);
    expect(m.get("otoroshi_websockets_open")).toBeGreaterThanOrEqual(0);
    for (const name of ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_start_time_seconds", "process_open_fds"]) expect(m.get(name)!).toBeGreaterThan(0);
    expect(m.get("process_start_time_seconds")!).toBeLessThanOrEqual(Date.now() / 1000);
  });

  test("reloads: success and failure counted, generation follows, counters kept", async () => {
    const before = (await scrape()).m;
    expect(before.all("otoroshi_client_requests_total")).toEqual([]);
    expect(await g.rewrite("routes: [ {")).toBe("rejected");
    expect(await g.rewrite(yaml(false).replace("m-off", "m-off2"))).toBe("applied");
    const { m } = await scrape();
    const d = (result: string) => m.get("otoroshi_config_reloads_total", { result })! - before.get("otoroshi_config_reloads_total", { result })!;
    expect(d("success")).toBe(1);
    expect(d("failure")).toBe(1);
    expect(m.get("otoroshi_config_generation")).toBe(before.get("otoroshi_config_generation")! + 1);
    // A reload keeps the counters: they never go back.
    expect(m.get("otoroshi_requests_total", { route: "m-open", method: "GET", status: "200" })).toBe(3);
  });

  test("per-client counters only with server.monitoring.perClientMetrics", async () => {
    const other = buildGateway(yaml(true));
    try {
      const ok = await other.call("http://keyed.test/a", { headers: { authorization: basic("m-app", "m-app-secret-1") } });
      await ok.arrayBuffer();
      const m = parseExposition(await (await other.call("http://any.test/.well-known/otoroshi/monitoring/metrics")).text());
      expect(m.get("otoroshi_client_requests_total", { client_id: "m-app" })!).toBeGreaterThanOrEqual(1);
      expect(m.type.get("otoroshi_client_requests_total")).toBe("counter");
    } finally {
      other.close();
    }
  });

  test("every family has HELP and TYPE, and promtool accepts the exposition", async () => {
    const { text, m } = await scrape();
    const families = new Set(m.samples.map((s) => s.name.replace(/_(bucket|sum|count)$/, (x, _s, _o, all) => (m.type.has(all.slice(0, -x.length)) ? "" : x))));
    for (const f of families) {
      expect(m.help.has(f)).toBe(true);
      expect(m.type.has(f)).toBe(true);
    }
    for (
      const f of [
        "otoroshi_requests_total",
        "otoroshi_request_duration_seconds",
        "otoroshi_upstream_errors_total",
        "otoroshi_inflight_requests",
        "otoroshi_websockets_open",
        "otoroshi_auth_failures_total",
        "otoroshi_quota_rejections_total",
        "otoroshi_tokens_issued_total",
        "otoroshi_target_healthy",
        "otoroshi_config_generation",
        "otoroshi_config_reloads_total",
        "otoroshi_config_last_reload_timestamp_seconds",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
        "process_open_fds",
      ]
    ) {
      expect(m.type.has(f)).toBe(true);
    }
    expect(m.type.get("otoroshi_request_duration_seconds")).toBe("histogram");
    const checked = promtoolCheck(text);
    if (checked === null) {
      console.warn("notice: promtool not found (Debian package prometheus); skipping `promtool check metrics`");
      return;
    }
    expect(checked.output).toBe("");
    expect(checked.code).toBe(0);
  });

  test("who may read it: loopback yes, a foreign address gets the 404 of no route", async () => {
    const res = await g.call("http://any.test/.well-known/otoroshi/monitoring/metrics", {}, { remoteAddress: "203.0.113.50" });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ "Otoroshi-Error": "No route found" });
    expect((await scrape()).res.status).toBe(200);
  });
});
