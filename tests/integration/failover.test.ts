// Failover through the whole gateway (in process, real sockets): dead ports, backends whose
// health endpoint flips, backups, retries, the breaker, the status endpoint.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { gauges } from "../../src/monitoring/gauges.ts";
import { buildGateway, type TestGateway } from "../helpers/gateway.ts";
import { deadPort, type FlipBackend, startFlipBackend, until } from "../helpers/flip-backend.ts";

const open: { gw?: TestGateway; backends: FlipBackend[] } = { backends: [] };
afterEach(async () => {
  // An empty config stops this gateway's health checkers (they are per process).
  if (open.gw) {
    await open.gw.rewrite("routes: []\n");
    open.gw.close();
    open.gw = undefined;
  }
  await Promise.all(open.backends.map((b) => b.stop()));
  open.backends = [];
});
afterAll(() => undefined);

async function backends(...names: string[]): Promise<FlipBackend[]> {
  const bs = await Promise.all(names.map((n) => startFlipBackend(n)));
  open.backends.push(...bs);
  return bs;
}
function gateway(yaml: string): TestGateway {
  open.gw = buildGateway(yaml);
  return open.gw;
}
const target = (port: number, extra = "") => `{ hostname: 127.0.0.1, port: ${port}${extra} }`;

async function status(gw: TestGateway): Promise<{ route: string; target: string; healthy: boolean; check: string; breaker: string; backup: boolean }[]> {
  const res = await gw.call("http://gw.test/.well-known/otoroshi/status");
  expect(res.status).toBe(200);
  return ((await res.json()) as { upstreams: never[] }).upstreams;
}

describe("dead targets", () => {
  test("one live and one dead target: no 5xx, and every POST body reaches the backend exactly once", async () => {
    const [live] = await backends("live");
    const dead = await deadPort();
    const gw = gateway(`
routes:
  - id: fo-dead
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(dead)}, ${target(live!.port)}]
      client: { retries: 1 }
`);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await gw.call(`http://fo.test/order`, { method: "POST", body: `order-${i}`, headers: { "content-type": "text/plain" } });
      statuses.push(res.status);
      expect(((await res.json()) as { body: string }).body).toBe(`order-${i}`);
    }
    expect(statuses.every((s) => s === 200)).toBe(true);
    const bodies = live!.calls.map((c) => c.body);
    expect(bodies).toEqual(Array.from({ length: 20 }, (_, i) => `order-${i}`));
    // A streamed (chunked) upload is replayed to the live target after the refused connection.
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("part1-"));
        c.enqueue(new TextEncoder().encode("part2"));
        c.close();
      },
    });
    for (let i = 0; i < 2; i++) {
      const body = i === 0 ? chunked : "x";
      const res = await gw.call(`http://fo.test/stream`, { method: "POST", body, duplex: "half" } as RequestInit);
      expect(res.status).toBe(200);
    }
    expect(live!.calls.filter((c) => c.path === "/stream").map((c) => c.body)).toEqual(["part1-part2", "x"]);
  });

  test("after maxErrors refused calls the breaker opens: the dead target is no longer tried (status shows it)", async () => {
    const [live] = await backends("live");
    const dead = await deadPort();
    const gw = gateway(`
routes:
  - id: fo-breaker
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(dead)}, ${target(live!.port)}]
      client: { retries: 0, maxErrors: 2, sampleInterval: 60000 }
`);
    // retries 0: the failures are visible, two of them open the breaker.
    const first = [];
    for (let i = 0; i < 4; i++) first.push((await gw.call("http://fo.test/x")).status);
    expect(first).toEqual([502, 200, 502, 200]);
    const after = [];
    for (let i = 0; i < 10; i++) after.push((await gw.call("http://fo.test/x")).status);
    expect(after.every((s) => s === 200)).toBe(true);
    const st = await status(gw);
    const deadEntry = st.find((s) => s.route === "fo-breaker" && s.target === `127.0.0.1:${dead}`)!;
    expect(deadEntry).toMatchObject({ healthy: false, breaker: "open" });
    expect(st.find((s) => s.target === `127.0.0.1:${live!.port}`)).toMatchObject({ healthy: true, breaker: "closed" });
    expect(gauges.targetHealth().find((g) => g.route === "fo-breaker" && g.target === `127.0.0.1:${dead}`)?.healthy).toBe(false);
  });

  test("the breaker half-opens after sampleInterval and a success closes it", async () => {
    const [a] = await backends("a");
    const gw = gateway(`
routes:
  - id: fo-halfopen
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(a!.port)}]
      client: { retries: 0, maxErrors: 1, sampleInterval: 300 }
`);
    const port = a!.port;
    await a!.stop();
    open.backends = [];
    expect((await gw.call("http://fo.test/x")).status).toBe(502);
    // Open: answered at once, without a connection attempt.
    const res = await gw.call("http://fo.test/x");
    expect(res.status).toBe(503);
    expect(res.headers.get("otoroshi-error-code")).toBe("ERR_NO_HEALTHY_TARGET");
    expect(await res.json()).toEqual({ "Otoroshi-Error": expect.stringContaining("no backend target") });
    const back = await startFlipBackend("back", port);
    open.backends.push(back);
    await until(async () => (await gw.call("http://fo.test/x")).status === 200, "the half-open breaker lets a call through");
    expect((await status(gw)).find((s) => s.route === "fo-halfopen")).toMatchObject({ breaker: "closed", healthy: true });
  });

  test("a call that failed after it was sent: a GET is retried on another target, a POST never twice", async () => {
    const [a, b] = await backends("a", "b");
    const gw = gateway(`
routes:
  - id: fo-sent
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(a!.port)}, ${target(b!.port)}]
      client: { retries: 2, maxErrors: 100 }
`);
    // Both targets drop /reset after reading it: a GET tries them all (1 + 2 retries), then 502.
    const get = await gw.call("http://fo.test/reset");
    expect(get.status).toBe(502);
    expect(a!.calls.length + b!.calls.length).toBe(3);
    a!.calls.length = b!.calls.length = 0;
    const post = await gw.call("http://fo.test/reset", { method: "POST", body: "pay-once" });
    expect(post.status).toBe(502);
    expect([...a!.calls, ...b!.calls].map((c) => c.body)).toEqual(["pay-once"]);
    // DELETE without a body is idempotent: retried.
    a!.calls.length = b!.calls.length = 0;
    expect((await gw.call("http://fo.test/reset", { method: "DELETE" })).status).toBe(502);
    expect(a!.calls.length + b!.calls.length).toBe(3);
  });

  test("every target dead and known dead: 503 ERR_NO_HEALTHY_TARGET at once", async () => {
    const [d1, d2] = [await deadPort(), await deadPort()];
    const gw = gateway(`
routes:
  - id: fo-alldead
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(d1)}, ${target(d2)}]
      client: { retries: 1, maxErrors: 1, sampleInterval: 60000 }
`);
    expect((await gw.call("http://fo.test/")).status).toBe(502);
    const res = await gw.call("http://fo.test/");
    expect(res.status).toBe(503);
    expect(res.headers.get("otoroshi-error")).toBe("true");
    expect(res.headers.get("otoroshi-error-code")).toBe("ERR_NO_HEALTHY_TARGET");
  });
});

describe("backup targets", () => {
  test("a backup gets no call while a primary is up, all calls when the primaries are down", async () => {
    const [p1, p2, bk] = await backends("p1", "p2", "bk");
    const gw = gateway(`
routes:
  - id: fo-backup
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(p1!.port)}, ${target(p2!.port)}, ${target(bk!.port, ", backup: true")}]
      healthCheck: { enabled: true, url: /health, intervalMs: 100, timeoutMs: 1000, unhealthyThreshold: 1, healthyThreshold: 1 }
      client: { retries: 2 }
`);
    for (let i = 0; i < 10; i++) expect((await gw.call("http://fo.test/a")).status).toBe(200);
    expect([p1!.calls.length, p2!.calls.length, bk!.calls.length]).toEqual([5, 5, 0]);
    p1!.health = 500;
    p2!.health = 500;
    await until(async () => (await status(gw)).filter((s) => s.route === "fo-backup" && !s.healthy).length === 2, "both primaries are out");
    for (let i = 0; i < 6; i++) expect((await gw.call("http://fo.test/b")).status).toBe(200);
    expect(bk!.calls.filter((c) => c.path === "/b").length).toBe(6);
    expect(p1!.calls.filter((c) => c.path === "/b").length + p2!.calls.filter((c) => c.path === "/b").length).toBe(0);
    p2!.health = 200;
    await until(async () => (await status(gw)).find((s) => s.target === `127.0.0.1:${p2!.port}`)?.healthy === true, "p2 is back");
    for (let i = 0; i < 4; i++) expect((await gw.call("http://fo.test/c")).status).toBe(200);
    expect(p2!.calls.filter((c) => c.path === "/c").length).toBe(4);
  });
});

describe("active health checks", () => {
  test("a target whose health endpoint flips gets no calls while down and calls again after healthyThreshold passes; no 5xx", async () => {
    const [a, b] = await backends("a", "b");
    const gw = gateway(`
routes:
  - id: fo-flip
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(a!.port)}, ${target(b!.port)}]
      healthCheck: { enabled: true, url: /health, intervalMs: 100, timeoutMs: 1000, unhealthyThreshold: 2, healthyThreshold: 2 }
`);
    await until(() => a!.healthChecks >= 1 && b!.healthChecks >= 1, "both targets were checked");
    const statuses: number[] = [];
    a!.health = 503;
    await until(async () => (await status(gw)).find((s) => s.target === `127.0.0.1:${a!.port}`)?.check === "down", "a is down");
    const before = a!.calls.length;
    for (let i = 0; i < 10; i++) statuses.push((await gw.call("http://fo.test/x")).status);
    expect(a!.calls.length).toBe(before);
    a!.health = 200;
    await until(async () => (await status(gw)).find((s) => s.target === `127.0.0.1:${a!.port}`)?.check === "up", "a is up again");
    for (let i = 0; i < 10; i++) statuses.push((await gw.call("http://fo.test/y")).status);
    expect(a!.calls.filter((c) => c.path === "/y").length).toBe(5);
    expect(statuses.every((s) => s === 200)).toBe(true);
  });

  test("every target failing its checks: 503 without any call reaching a backend", async () => {
    const [a] = await backends("a");
    a!.health = 500;
    const gw = gateway(`
routes:
  - id: fo-allsick
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(a!.port)}]
      healthCheck: { enabled: true, url: /health, intervalMs: 100, unhealthyThreshold: 1 }
`);
    await until(async () => (await status(gw)).find((s) => s.route === "fo-allsick")?.check === "down", "a is down");
    const res = await gw.call("http://fo.test/x", { method: "POST", body: "never" });
    expect(res.status).toBe(503);
    expect(res.headers.get("otoroshi-error-code")).toBe("ERR_NO_HEALTHY_TARGET");
    expect(a!.calls.length).toBe(0);
  });

  test("health state is kept across a reload for unchanged targets; a removed target's checker stops", async () => {
    const [a, b] = await backends("a", "b");
    const hc = "healthCheck: { enabled: true, url: /health, intervalMs: 100, unhealthyThreshold: 1, healthyThreshold: 3 }";
    const gw = gateway(`
routes:
  - id: fo-reload
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(a!.port)}, ${target(b!.port)}]
      ${hc}
`);
    a!.health = 500;
    await until(async () => (await status(gw)).find((s) => s.target === `127.0.0.1:${a!.port}`)?.check === "down", "a is down");
    // A reload that changes something else: a stays down (no fresh "healthy" start).
    await gw.rewrite(`
routes:
  - id: fo-reload
    frontend: { domains: [fo.test, other.test] }
    backend:
      targets: [${target(a!.port)}, ${target(b!.port)}]
      ${hc}
`);
    expect(gw.store.current().generation).toBe(2);
    expect((await status(gw)).find((s) => s.target === `127.0.0.1:${a!.port}`)?.check).toBe("down");
    for (let i = 0; i < 4; i++) expect((await gw.call("http://other.test/z")).status).toBe(200);
    expect(a!.calls.length).toBe(0);
    // a removed: its checks stop.
    await gw.rewrite(`
routes:
  - id: fo-reload
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(b!.port)}]
      ${hc}
`);
    const checks = a!.healthChecks;
    await new Promise((r) => setTimeout(r, 400));
    expect(a!.healthChecks).toBeLessThanOrEqual(checks + 1); // one may have been in flight
    expect((await status(gw)).some((s) => s.target === `127.0.0.1:${a!.port}`)).toBe(false);
  });
});

describe("timeouts", () => {
  test("a GET that timed out is retried on another target, never on the one that timed out", async () => {
    const [slow, fast] = await backends("slow", "fast");
    const gw = gateway(`
routes:
  - id: fo-timeout
    frontend: { domains: [fo.test], stripPath: false }
    backend:
      timeout: 300
      targets: [${target(slow!.port)}]
      client: { retries: 3, retryInitialDelay: 0 }
`);
    slow!.delayMs = 2000;
    expect((await gw.call("http://fo.test/once")).status).toBe(504);
    // The backend records a call when its body has arrived: one call, never a second one.
    await until(() => slow!.calls.length === 1, "the call reached the backend");
    await new Promise((r) => setTimeout(r, 200));
    expect(slow!.calls.map((c) => c.path)).toEqual(["/once"]);
    await gw.rewrite(`
routes:
  - id: fo-timeout
    frontend: { domains: [fo.test], stripPath: false }
    backend:
      timeout: 300
      targets: [${target(slow!.port)}, ${target(fast!.port)}]
      client: { retries: 3, retryInitialDelay: 0 }
`);
    // Round robin sends the first call to "slow"; the retry goes to "fast".
    const res = await gw.call("http://fo.test/twice");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { name: string }).name).toBe("fast");
  });
});
