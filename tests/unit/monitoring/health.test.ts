// The probes' answers: ready follows the process's phase; health's status follows the shared
// store and the targets' health as the active checks report it (unknown when none does).
import { afterEach, describe, expect, test } from "bun:test";
import { gauges, type TargetHealth } from "../../../src/monitoring/gauges.ts";
import { createHealthEndpoints, HEALTH_PATH, Lifecycle, LIVE_PATH, READY_PATH } from "../../../src/monitoring/health.ts";
import type { QuotaStatus } from "../../../src/limits/quotas.ts";
import { processHealth } from "../../../src/proxy/health.ts";
import { buildGateway } from "../../helpers/gateway.ts";

const LOOPBACK = { remoteAddress: "127.0.0.1", secure: false };
const YAML = (onUnavailable = "open") => `
server: { storeUnavailable: ${onUnavailable} }
routes:
  - id: api
    frontend: { domains: [api.test] }
    backend: { targets: [{ hostname: a.internal, port: 8080 }, { hostname: b.internal, tls: true }, { hostname: "::1", port: 9000 }] }
  - id: off
    enabled: false
    frontend: { domains: [off.test] }
    backend: { targets: [{ hostname: c.internal }] }
`;

// The process's registry is the source outside these tests (src/proxy/health.ts): put it back.
afterEach(() => gauges.setTargetHealthSource(() => processHealth.gauges()));

function setup(opts: { store?: QuotaStatus; onUnavailable?: string; lifecycle?: Lifecycle; clock?: () => number } = {}) {
  const g = buildGateway(YAML(opts.onUnavailable));
  const lifecycle = opts.lifecycle ?? new Lifecycle(true, 1_000);
  const h = createHealthEndpoints(g.store, { lifecycle, store: opts.store ? () => opts.store! : undefined, clock: opts.clock ?? (() => 3_500) });
  const get = async (path: string, method = "GET") => {
    const res = h.answer(new Request(`http://x.test${path}`, { method }), LOOPBACK, path)!;
    return { status: res.status, body: method === "HEAD" ? null : ((await res.json()) as Record<string, unknown>), res };
  };
  return { g, lifecycle, get, h };
}

describe("ready follows the process's phase", () => {
  test("starting: 503; ready: 200; stopping: 503 for good", async () => {
    const lifecycle = new Lifecycle();
    const { g, get } = setup({ lifecycle });
    try {
      expect(await get(READY_PATH)).toMatchObject({ status: 503, body: { status: "starting", generation: 1 } });
      lifecycle.markReady();
      expect(await get(READY_PATH)).toMatchObject({ status: 200, body: { status: "ready", generation: 1 } });
      lifecycle.markStopping();
      expect(await get(READY_PATH)).toMatchObject({ status: 503, body: { status: "stopping" } });
      lifecycle.markReady();
      expect((await get(READY_PATH)).status).toBe(503);
      // live says the process serves, whatever the phase.
      expect(await get(LIVE_PATH)).toMatchObject({ status: 200, body: { status: "live" } });
    } finally {
      g.close();
    }
  });
  test("paths that are not a probe are left to the caller", () => {
    const { g, h } = setup();
    try {
      for (const p of ["/.well-known/otoroshi/monitoring/", "/.well-known/otoroshi/monitoring/live/", "/.well-known/otoroshi/monitoring/Live", "/live"]) {
        expect(h.answer(new Request("http://x.test" + p), LOOPBACK, p)).toBeNull();
      }
    } finally {
      g.close();
    }
  });
});

describe("health", () => {
  test("targets the health registry has no state for are unknown, and the gateway healthy", async () => {
    const { g, get } = setup({ store: { store: "memory", healthy: true } });
    gauges.setTargetHealthSource(() => []);
    try {
      const { status, body } = await get(HEALTH_PATH);
      expect(status).toBe(200);
      expect(body).toEqual({
        status: "healthy",
        ready: true,
        generation: 1,
        uptime: 2.5,
        store: { kind: "memory", reachable: true, onUnavailable: "open" },
        targets: {
          healthy: 0,
          unhealthy: 0,
          unknown: 3,
          list: [
            { route: "api", target: "a.internal:8080", status: "unknown" },
            { route: "api", target: "b.internal:443", status: "unknown" },
            { route: "api", target: "[::1]:9000", status: "unknown" },
          ],
        },
      });
    } finally {
      g.close();
    }
  });

  test("the checks' report is used per route and target: one down is degraded, all down unhealthy (503)", async () => {
    const { g, get } = setup();
    try {
      let report: TargetHealth[] = [
        { route: "api", target: "a.internal:8080", healthy: true },
        { route: "api", target: "b.internal:443", healthy: false },
        { route: "gone", target: "x:1", healthy: false },
      ];
      gauges.setTargetHealthSource(() => report);
      let r = await get(HEALTH_PATH);
      expect(r.status).toBe(200);
      expect(r.body!.status).toBe("degraded");
      expect(r.body!.store).toBeNull();
      expect(r.body!.targets).toMatchObject({ healthy: 1, unhealthy: 1, unknown: 1 });
      report = [...report, { route: "api", target: "[::1]:9000", healthy: true }].map((t) => ({ ...t, healthy: false }));
      r = await get(HEALTH_PATH);
      expect(r.status).toBe(503);
      expect(r.body!.status).toBe("unhealthy");
      report = [];
      expect((await get(HEALTH_PATH)).body!.status).toBe("healthy");
    } finally {
      g.close();
    }
  });

  test("an unreachable shared store: degraded when it fails open, unhealthy (503) when it fails closed", async () => {
    const open = setup({ store: { store: "redis", healthy: false, lastError: "ECONNREFUSED" } });
    const closed = setup({ store: { store: "redis", healthy: false }, onUnavailable: "closed" });
    try {
      const a = await open.get(HEALTH_PATH);
      expect(a.status).toBe(200);
      expect(a.body).toMatchObject({ status: "degraded", store: { kind: "redis", reachable: false, onUnavailable: "open" } });
      const b = await closed.get(HEALTH_PATH);
      expect(b.status).toBe(503);
      expect(b.body).toMatchObject({ status: "unhealthy", store: { kind: "redis", reachable: false, onUnavailable: "closed" } });
    } finally {
      open.g.close();
      closed.g.close();
    }
  });

  test("HEAD: same status and headers, no body; JSON never cached", async () => {
    const { g, get } = setup();
    try {
      for (const p of [LIVE_PATH, READY_PATH, HEALTH_PATH]) {
        const { status, res } = await get(p, "HEAD");
        expect(status).toBe(200);
        expect(res.headers.get("cache-control")).toBe("no-store");
        expect(res.headers.get("content-type")).toBe("application/json");
        expect(await res.text()).toBe("");
      }
    } finally {
      g.close();
    }
  });
});
