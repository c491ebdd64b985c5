// The failed-secret limiter through the whole gateway (issue 8 item 12): an unknown client id is
// counted exactly like an existing one, so the answers never tell them apart, on routes and at
// the OAuth endpoints; with server.store the count is shared by every gateway using the Redis.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSnapshot } from "../../src/config/load.ts";
import { ConfigStore } from "../../src/config/store.ts";
import { createGateway } from "../../src/gateway.ts";
import { createFailureGuard, createSharedFailureGuard, type FailureGuardHandle } from "../../src/limits/failures.ts";
import type { FailureGuard } from "../../src/plugins/types.ts";
import type { ConnInfo } from "../../src/runtime/types.ts";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { basic, bunUpstream } from "../helpers/gateway.ts";
import { hasRedis, type RedisProc, startRedis } from "../helpers/redis.ts";

const NOW = Date.parse("2026-06-01T12:00:00Z");
let be: EchoBackend;
let dir: string;
const clock = { now: NOW };

const yaml = (port: number) => `
plugins:
  - plugin: ClientCredentialService
    config: { domain: auth.test, secure: false }
routes:
  - id: api
    frontend: { domains: [api.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
  - { clientId: known, clientSecret: known-secret }
`;

type Handler = (req: Request, info: ConnInfo) => Promise<Response>;

function gateway(guard: FailureGuard): Handler {
  const file = join(dir, "otoroshi.yaml");
  const { snapshot } = loadSnapshot(file, 1, { env: {}, clock: () => clock.now, upstreamFetch: bunUpstream, stateDir: dir, guard });
  return createGateway(new ConfigStore(snapshot));
}

beforeAll(async () => {
  be = await startEchoBackend();
  dir = mkdtempSync(join(tmpdir(), "oto-failed-it-"));
  writeFileSync(join(dir, "otoroshi.yaml"), yaml(be.port));
});
afterAll(async () => {
  await be.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** One wrong attempt of each kind, as the client sees the answer: status, Retry-After, body. */
const attempts: Record<string, (id: string) => Request> = {
  basic: (id) => new Request("http://api.test/", { headers: { authorization: basic(id, "wrong") } }),
  customHeaders: (id) => new Request("http://api.test/", { headers: { "otoroshi-client-id": id, "otoroshi-client-secret": "wrong" } }),
  token: (id) =>
    new Request("http://auth.test/.well-known/otoroshi/oauth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=client_credentials&client_id=${encodeURIComponent(id)}&client_secret=wrong`,
    }),
  introspect: (id) =>
    new Request("http://auth.test/.well-known/otoroshi/oauth/token/introspect", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(id, "wrong") },
      body: "token=x",
    }),
};

async function answers(handlers: Handler[], kind: string, id: string, ip: string, n = 12): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await handlers[i % handlers.length]!(attempts[kind]!(id), { remoteAddress: ip, secure: false });
    out.push(`${res.status} retry-after=${res.headers.get("retry-after")} ${await res.text()}`);
  }
  return out;
}

describe("failed-secret limiter: unknown ids are counted like existing ones", () => {
  test("routes and OAuth endpoints answer an unknown id exactly as an existing one, 429 after 10 failures", async () => {
    const handler = gateway(createFailureGuard({ maxFailures: 10, windowSeconds: 60 }));
    for (const [n, kind] of Object.keys(attempts).entries()) {
      const known = await answers([handler], kind, "known", `198.51.100.${n}`);
      expect(known.map((a) => a.slice(0, 3))).toEqual([...Array(10).fill("401"), "429", "429"]);
      expect(known[10]).toContain("retry-after=60");
      for (const unknown of ["ghost", `ghost-${"x".repeat(500)}`]) expect([kind, await answers([handler], kind, unknown, `198.51.100.${n}`)]).toEqual([kind, known]);
    }
  });

  test("the right secret is refused while the pair is locked out, and accepted once the window frees it", async () => {
    const handler = gateway(createFailureGuard({ maxFailures: 10, windowSeconds: 60 }));
    const ip = "192.0.2.50";
    await answers([handler], "basic", "known", ip, 10);
    const right = () => handler(new Request("http://api.test/", { headers: { authorization: basic("known", "known-secret") } }), { remoteAddress: ip, secure: false });
    expect((await right()).status).toBe(429);
    clock.now += 60_000;
    try {
      expect((await right()).status).toBe(200);
    } finally {
      clock.now = NOW;
    }
  });
});

describe.skipIf(!hasRedis)("failed-secret limiter shared through Redis (two gateways)", () => {
  let redis: RedisProc;
  const guards: FailureGuardHandle[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const g of guards) await g.close();
    await redis?.stop();
  });

  test("failures at either gateway count together, for known and unknown ids alike", async () => {
    const shared = () => {
      const g = createSharedFailureGuard({ maxFailures: 10, windowSeconds: 60, store: `redis://127.0.0.1:${redis.port}`, storeUnavailable: "closed" });
      guards.push(g);
      return gateway(g);
    };
    const pair = [shared(), shared()];
    for (const [n, kind] of Object.keys(attempts).entries()) {
      const known = await answers(pair, kind, "known", `203.0.113.${n}`);
      expect(known.map((a) => a.slice(0, 3))).toEqual([...Array(10).fill("401"), "429", "429"]);
      expect(await answers(pair, kind, "ghost", `203.0.113.${n}`)).toEqual(known);
    }
  });
});
