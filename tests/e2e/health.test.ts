// The monitoring probes and the shutdown sequence seen from outside: the real gateway process
// (binary, Deno or Bun per OTOROSHI_E2E_RUNTIME) on 127.0.0.1. The drain test holds a call at a
// backend this file controls, so every step waits for an event, never for a guessed duration.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { type GatewayProcess, startGateway } from "./process.ts";

const TIMEOUT = 45_000;
const KEY = "e2e-monitoring-key-8c1f7a2b9d";
const PROBE = "/.well-known/otoroshi/monitoring/";

/** A backend that answers at once, except /hold, which waits until the test releases it. */
let backend: Server;
let port = 0;
let held: ServerResponse | null = null;
let arrivedSignal: () => void = () => {};
beforeAll(async () => {
  backend = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith("/hold")) {
      held = res;
      arrivedSignal();
      return;
    }
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ path: req.url, authorization: req.headers.authorization ?? null }));
  });
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
  port = (backend.address() as AddressInfo).port;
});
afterAll(async () => {
  backend.closeAllConnections();
  await new Promise<void>((r) => backend.close(() => r()));
});

const gateways: GatewayProcess[] = [];
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((g) => g.stop()));
});

const yaml = (extra = "") => `
server:
  monitoring: { accessKey: "\${env:MON_KEY}" }
${extra}
routes:
  - id: app
    frontend: { domains: [app.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
`;

async function start(extra = ""): Promise<GatewayProcess> {
  const gw = await startGateway(yaml(extra), { env: { MON_KEY: KEY } });
  gateways.push(gw);
  return gw;
}

/** Whether a new TCP connection to the port is accepted (bounded by the OS's answer). */
function accepts(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(p, "127.0.0.1");
    const t = setTimeout(() => (s.destroy(), resolve(false)), 5_000);
    s.once("connect", () => (clearTimeout(t), s.destroy(), resolve(true)));
    s.once("error", () => (clearTimeout(t), resolve(false)));
  });
}

describe("probes on the real process", () => {
  test(
    "live, ready and health answer on any host with JSON that is never cached",
    async () => {
      const gw = await start();
      for (const [probe, status] of [["live", "live"], ["ready", "ready"]] as const) {
        const res = await fetch(`${gw.url}${PROBE}${probe}`, { headers: { host: "whatever.test" } });
        expect(res.status).toBe(200);
        expect(res.headers.get("cache-control")).toBe("no-store");
        expect(((await res.json()) as { status: string }).status).toBe(status);
      }
      const res = await fetch(`${gw.url}${PROBE}health`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { status: string; ready: boolean; generation: number; uptime: unknown; store: unknown; targets: { list: { route: string; target: string }[] } };
      expect(body.status).toBe("healthy");
      expect(body.ready).toBe(true);
      expect(body.generation).toBe(1);
      expect(typeof body.uptime).toBe("number");
      expect(body.store).toEqual({ kind: "memory", reachable: true, onUnavailable: "open" });
      expect(body.targets.list.map((t: { route: string; target: string }) => `${t.route} ${t.target}`)).toEqual([`app 127.0.0.1:${port}`]);
      const head = await fetch(`${gw.url}${PROBE}ready`, { method: "HEAD" });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe("");
      // The key opens them too; the process never writes it anywhere.
      expect((await fetch(`${gw.url}${PROBE}health?access_key=${KEY}`, { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(200);
      expect(gw.rawStderr.join("\n")).not.toContain(KEY);
    },
    TIMEOUT,
  );
});

describe("shutdown", () => {
  test(
    "SIGTERM: ready 503 while calls are still served for shutdownDelay, then the listener closes, the slow call completes, exit 0",
    async () => {
      const gw = await start("  shutdownDelay: 4000");
      expect((await fetch(`${gw.url}${PROBE}ready`)).status).toBe(200);
      // A call that stays in flight until the test lets it go.
      const arrived = new Promise<void>((r) => (arrivedSignal = r));
      const slow = fetch(`${gw.url}/hold/1`, { headers: { host: "app.test" } });
      await arrived;
      const exited = gw.proc.exited;

      gw.proc.kill("SIGTERM");
      const stopping = await gw.waitForLog((l) => l.event === "server.stopping");
      expect(stopping.shutdownDelay).toBe(4000);
      const ready = await fetch(`${gw.url}${PROBE}ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { status: string }).status).toBe("stopping");
      // Still served: a load balancer has not noticed yet.
      const normal = await fetch(`${gw.url}/normal`, { headers: { host: "app.test" } });
      expect(normal.status).toBe(200);
      expect(((await normal.json()) as { path: string }).path).toBe("/normal");
      expect(await accepts(gw.port)).toBe(true);

      // After the delay the listener closes: no new connection is accepted.
      await gw.waitForLog((l) => l.event === "server.closing", 20_000);
      let closed = false;
      for (let i = 0; i < 50 && !closed; i++) {
        closed = !(await accepts(gw.port));
        if (!closed) await Bun.sleep(100);
      }
      expect(closed).toBe(true);
      expect(gw.logs.some((l) => l.event === "server.stopped")).toBe(false);

      // The call in flight all along still completes.
      held!.setHeader("content-type", "text/plain");
      held!.end("done at last");
      const res = await slow;
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("done at last");
      const code = await Promise.race([exited, Bun.sleep(20_000).then(() => "still running")]);
      expect(code).toBe(0);
      expect(gw.logs.some((l) => l.event === "server.stopped")).toBe(true);
    },
    TIMEOUT,
  );

  test(
    "a second SIGTERM cuts shutdownDelay short",
    async () => {
      const gw = await start("  shutdownDelay: 600000");
      expect((await fetch(`${gw.url}${PROBE}ready`)).status).toBe(200);
      gw.proc.kill("SIGTERM");
      await gw.waitForLog((l) => l.event === "server.stopping");
      expect((await fetch(`${gw.url}${PROBE}ready`)).status).toBe(503);
      gw.proc.kill("SIGTERM");
      await gw.waitForLog((l) => l.event === "server.closing", 10_000);
      const code = await Promise.race([gw.proc.exited, Bun.sleep(20_000).then(() => "still running")]);
      expect(code).toBe(0);
    },
    TIMEOUT,
  );
});
