// Quotas and the failed-secret limiter through the whole gateway: YAML in, Requests in,
// Responses out, with an injected clock and a real echo backend.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LoadOptions, loadSnapshot } from "../../src/config/load.ts";
import { configDigest, Reloader } from "../../src/config/reload.ts";
import { ConfigStore } from "../../src/config/store.ts";
import { createGateway } from "../../src/gateway.ts";
import { createFailureGuard } from "../../src/limits/failures.ts";
import { createQuotaEnforcer, type QuotaEnforcerHandle } from "../../src/limits/quotas.ts";
import type { ConnInfo } from "../../src/runtime/types.ts";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { basic, bunUpstream } from "../helpers/gateway.ts";

const NOW = Date.parse("2026-06-01T12:00:00Z");
let be: EchoBackend;
let dir: string;
let file: string;
let quotas: QuotaEnforcerHandle;
let reloader: Reloader;
let handler: (req: Request, info: ConnInfo) => Promise<Response>;
const clock = { now: NOW };

const yaml = (port: number, daily = 3, extraRoute = "") => `
plugins:
  - plugin: ClientCredentialService
    config: { domain: auth.test, secure: false }
routes:
  - id: api
    frontend: { domains: [api.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins: [{ plugin: Apikeys }]
  - id: other
    frontend: { domains: [other.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins: [{ plugin: Apikeys }]
${extraRoute}
apikeys:
  - { clientId: limited, clientSecret: l-secret, dailyQuota: ${daily}, monthlyQuota: 1000 }
  - { clientId: burst, clientSecret: b-secret, throttlingQuota: 2 }
  - { clientId: guarded, clientSecret: g-secret }
  - { clientId: free, clientSecret: f-secret }
`;

const call = (host: string, headers: Record<string, string>, ip = "127.0.0.1", path = "/") => handler(new Request(`http://${host}${path}`, { headers }), { remoteAddress: ip, secure: false });

beforeAll(async () => {
  be = await startEchoBackend();
  dir = mkdtempSync(join(tmpdir(), "oto-quota-it-"));
  file = join(dir, "otoroshi.yaml");
  writeFileSync(file, yaml(be.port));
  quotas = createQuotaEnforcer({ stateDir: dir, storeUnavailable: "open", flushIntervalMs: 60_000 });
  const guard = createFailureGuard({ maxFailures: 10, windowSeconds: 60 });
  const opts: LoadOptions = { env: {}, clock: () => clock.now, upstreamFetch: bunUpstream, stateDir: dir, quotas, guard };
  const { snapshot, parsed } = loadSnapshot(file, 1, opts);
  const store = new ConfigStore(snapshot);
  reloader = new Reloader(file, store, opts, configDigest(parsed.config));
  handler = createGateway(store, () => ({ quotas: quotas.status() }));
});
afterAll(async () => {
  await quotas.close();
  rmSync(dir, { recursive: true, force: true });
  await be.stop();
});

describe("quotas through the gateway", () => {
  test("a successful call carries the remaining calls and the RateLimit fields, counted per key across routes", async () => {
    const auth = { authorization: basic("limited", "l-secret") };
    const remaining = [];
    for (let i = 0; i < 2; i++) {
      const res = await call(i ? "other.test" : "api.test", auth); // counted per key across routes
      expect(res.status).toBe(200);
      remaining.push(res.headers.get("otoroshi-daily-calls-remaining"));
      expect(res.headers.get("otoroshi-monthly-calls-remaining")).toBe(String(999 - i));
      expect(res.headers.get("ratelimit-policy")).toBe('"daily";q=3;w=86400, "monthly";q=1000;w=2592000');
    }
    expect(remaining).toEqual(["2", "1"]);
  });

  test("the count survives a hot reload that keeps the limits, and a changed limit applies to it", async () => {
    const extra = `  - id: new\n    frontend: { domains: [new.test] }\n    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }`;
    writeFileSync(file, yaml(be.port, 3, extra));
    expect(await reloader.reload("test")).toBe("applied");
    const auth = { authorization: basic("limited", "l-secret") };
    const third = await call("api.test", auth);
    expect(third.headers.get("otoroshi-daily-calls-remaining")).toBe("0");

    const refused = await call("api.test", auth);
    expect(refused.status).toBe(429);
    expect(await refused.json()).toEqual({ "Otoroshi-Error": "You performed too much requests" });
    expect(refused.headers.get("otoroshi-error-code")).toBe("ERR_QUOTA_EXCEEDED");
    expect(refused.headers.get("retry-after")).toBe("43200");
    expect(refused.headers.get("ratelimit")).toBe('"daily";r=0;t=43200');

    writeFileSync(file, yaml(be.port, 4, extra));
    expect(await reloader.reload("test")).toBe("applied");
    expect((await call("api.test", auth)).headers.get("otoroshi-daily-calls-remaining")).toBe("0");
    expect((await call("api.test", auth)).status).toBe(429);
    writeFileSync(file, yaml(be.port, 2, extra));
    expect(await reloader.reload("test")).toBe("applied");
    expect((await call("api.test", auth)).status).toBe(429);
  });

  test("token requests are not counted; calls with the token on a route are", async () => {
    const token = await handler(
      new Request("http://auth.test/.well-known/otoroshi/oauth/token", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "grant_type=client_credentials&client_id=limited&client_secret=l-secret",
      }),
      { remoteAddress: "127.0.0.1", secure: false },
    );
    expect(token.status).toBe(200); // the daily quota is used up, yet a token is issued
    expect(token.headers.has("otoroshi-daily-calls-remaining")).toBe(false);
    const { access_token } = (await token.json()) as { access_token: string };
    const res = await call("api.test", { authorization: `Bearer ${access_token}` });
    expect(res.status).toBe(429);
  });

  test("throttlingQuota is per whole second", async () => {
    const auth = { authorization: basic("burst", "b-secret") };
    clock.now = NOW + 5_000;
    expect((await call("api.test", auth)).status).toBe(200);
    expect((await call("api.test", auth)).status).toBe(200);
    const third = await call("api.test", auth);
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("1");
    clock.now = NOW + 6_000;
    expect((await call("api.test", auth)).status).toBe(200);
  });

  test("keys without quotas get no quota headers, and the status endpoint shows the store", async () => {
    const res = await call("api.test", { authorization: basic("free", "f-secret") });
    expect(res.status).toBe(200);
    expect(res.headers.has("otoroshi-daily-calls-remaining")).toBe(false);
    expect(res.headers.has("ratelimit")).toBe(false);
    const status = await (await call("x.test", {}, "127.0.0.1", "/.well-known/otoroshi/status")).json();
    expect(status.quotas).toEqual({ store: "memory", healthy: true });
  });
});

describe("failed secret limiter through the gateway", () => {
  test("10 wrong secrets lock the (client, address) pair out with 429 even with the right secret; another address is not", async () => {
    const ip = "198.51.100.20";
    for (let i = 0; i < 10; i++) expect((await call("api.test", { authorization: basic("guarded", "wrong") }, ip)).status).toBe(401);
    const locked = await call("api.test", { authorization: basic("guarded", "g-secret") }, ip);
    expect(locked.status).toBe(429);
    expect(locked.headers.get("otoroshi-error-code")).toBe("ERR_TOO_MANY_FAILURES");
    expect(Number(locked.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await call("api.test", { authorization: basic("guarded", "g-secret") }, "198.51.100.21")).status).toBe(200);
    clock.now += 60_000;
    expect((await call("api.test", { authorization: basic("guarded", "g-secret") }, ip)).status).toBe(200);
  });
});
