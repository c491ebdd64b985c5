// The failover story on the real binary and on Deno: dead ports, a backend whose health
// endpoint flips, backups, no healthy target, and the connect-phase timeout.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { spawn, type Subprocess } from "bun";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";
import { deadPort, type FlipBackend, startFlipBackend, until } from "../helpers/flip-backend.ts";

let gw: GatewayProcess | undefined;
let bs: FlipBackend[] = [];
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  await Promise.all(bs.map((b) => b.stop()));
  bs = [];
});

async function backends(...names: string[]): Promise<FlipBackend[]> {
  const list = await Promise.all(names.map((n) => startFlipBackend(n)));
  bs.push(...list);
  return list;
}
const target = (port: number, extra = "") => `{ hostname: 127.0.0.1, port: ${port}${extra} }`;
const call = (path: string, init: RequestInit = {}) => fetch(gw!.url + path, { ...init, headers: { host: "fo.test", ...(init.headers as Record<string, string>) } });

type Upstream = { route: string; target: string; healthy: boolean; check: string; breaker: string };
async function upstreams(): Promise<Upstream[]> {
  const res = await fetch(gw!.url + "/.well-known/otoroshi/status");
  expect(res.status).toBe(200);
  return ((await res.json()) as { upstreams: Upstream[] }).upstreams;
}

describe(`failover on ${RUNTIME}`, () => {
  test("one dead target: no 5xx, every POST body reaches the live backend exactly once", async () => {
    const [live] = await backends("live");
    const dead = await deadPort();
    gw = await startGateway(`
routes:
  - id: e2e-dead
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(dead)}, ${target(live!.port)}]
      client: { retries: 1, maxErrors: 3, sampleInterval: 60000 }
`);
    for (let i = 0; i < 12; i++) {
      const res = await call("/pay", { method: "POST", body: `payment-${i}` });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { body: string }).body).toBe(`payment-${i}`);
      expect((await call("/get")).status).toBe(200);
    }
    expect(live!.calls.filter((c) => c.method === "POST").map((c) => c.body)).toEqual(Array.from({ length: 12 }, (_, i) => `payment-${i}`));
    // After maxErrors refused connections the breaker keeps the dead target out.
    expect((await upstreams()).find((u) => u.target === `127.0.0.1:${dead}`)).toMatchObject({ route: "e2e-dead", healthy: false, breaker: "open" });
  });

  test("health endpoint flips: the target gets no calls while down, calls again once up; backup only when primaries are down; then 503 at once", async () => {
    const [a, b, bk] = await backends("a", "b", "bk");
    gw = await startGateway(`
routes:
  - id: e2e-flip
    frontend: { domains: [fo.test] }
    backend:
      targets: [${target(a!.port)}, ${target(b!.port)}, ${target(bk!.port, ", backup: true")}]
      healthCheck: { enabled: true, url: /health, intervalMs: 100, timeoutMs: 1000, unhealthyThreshold: 1, healthyThreshold: 2 }
`);
    const statuses: number[] = [];
    const hits = (x: FlipBackend, path: string) => x.calls.filter((c) => c.path === path).length;
    for (let i = 0; i < 6; i++) statuses.push((await call("/one")).status);
    expect([hits(a!, "/one"), hits(b!, "/one"), hits(bk!, "/one")]).toEqual([3, 3, 0]);

    a!.health = 503;
    await until(async () => (await upstreams()).find((u) => u.target === `127.0.0.1:${a!.port}`)?.check === "down", "a is down");
    for (let i = 0; i < 6; i++) statuses.push((await call("/two")).status);
    expect([hits(a!, "/two"), hits(b!, "/two"), hits(bk!, "/two")]).toEqual([0, 6, 0]);

    b!.health = 503;
    await until(async () => (await upstreams()).filter((u) => u.route === "e2e-flip" && !u.healthy).length === 2, "both primaries are down");
    for (let i = 0; i < 4; i++) statuses.push((await call("/three", { method: "POST", body: "x" })).status);
    expect(hits(bk!, "/three")).toBe(4);

    a!.health = 200;
    await until(async () => (await upstreams()).find((u) => u.target === `127.0.0.1:${a!.port}`)?.check === "up", "a is up again");
    for (let i = 0; i < 4; i++) statuses.push((await call("/four")).status);
    expect([hits(a!, "/four"), hits(bk!, "/four")]).toEqual([4, 0]);
    expect(statuses.every((s) => s === 200)).toBe(true);

    a!.health = 500;
    bk!.health = 500;
    await until(async () => (await upstreams()).filter((u) => u.route === "e2e-flip" && !u.healthy).length === 3, "every target is down");
    const before = a!.calls.length + b!.calls.length + bk!.calls.length;
    const res = await call("/five", { method: "POST", body: "never" });
    expect(res.status).toBe(503);
    expect(res.headers.get("otoroshi-error-code")).toBe("ERR_NO_HEALTHY_TARGET");
    expect(((await res.json()) as Record<string, string>)["Otoroshi-Error"]).toContain("no backend target");
    expect(a!.calls.length + b!.calls.length + bk!.calls.length).toBe(before);
  });
});

describe(`connect-phase timeout on ${RUNTIME}`, () => {
  let hang: Subprocess | undefined;
  afterAll(async () => {
    hang?.kill("SIGKILL");
    await hang?.exited;
  });

  test("a target whose connections never open: Deno fails over after connectionTimeout (POST too); Bun, without a connect timer, only retries the GET after `timeout`", async () => {
    // A listener that never accepts, its backlog filled: further connects stay in SYN-SENT.
    const py = Bun.which("python3");
    if (!py) throw new Error("python3 is needed for the never-accepting listener");
    const script = [
      "import socket, time",
      "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
      "port = s.getsockname()[1]; fill = []",
      "for i in range(8):",
      "    c = socket.socket(); c.setblocking(False)",
      "    try: c.connect(('127.0.0.1', port))",
      "    except BlockingIOError: pass",
      "    fill.append(c)",
      "print(port, flush=True)",
      "time.sleep(120)",
    ].join("\n");
    hang = spawn([py, "-c", script], { stdout: "pipe", stderr: "ignore" });
    const reader = (hang.stdout as ReadableStream<Uint8Array>).getReader();
    const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
    expect(port).toBeGreaterThan(0);
    const [live] = await backends("live");
    gw = await startGateway(`
routes:
  - id: e2e-connect
    frontend: { domains: [fo.test] }
    backend:
      timeout: 1500
      targets: [${target(port)}, ${target(live!.port)}]
      client: { retries: 1, connectionTimeout: 200, retryInitialDelay: 0 }
`);
    // Round robin: the POST and the second GET go to the hanging target first.
    const post = await call("/pay", { method: "POST", body: "once" });
    expect((await call("/get1")).status).toBe(200);
    expect((await call("/get2")).status).toBe(200);
    expect(live!.calls.map((c) => c.path).filter((p) => p.startsWith("/get"))).toEqual(["/get1", "/get2"]);
    if (RUNTIME === "deno") {
      expect(post.status).toBe(200);
      expect(live!.calls.filter((c) => c.method === "POST").map((c) => c.body)).toEqual(["once"]);
    } else {
      // Bun's fetch cannot tell a connect that never ended from a backend that never answered.
      expect(post.status).toBe(504);
      expect(live!.calls.filter((c) => c.method === "POST")).toEqual([]);
    }
  });
});
