// Two real gateway processes sharing quota counters through a real redis-server: a daily quota
// of 100 allows exactly 100 calls between them. Skipped with a notice without redis-server.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { basic } from "../helpers/gateway.ts";
import { hasRedis, REDIS, type RedisProc, startRedis } from "../helpers/redis.ts";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";

if (!hasRedis) console.warn(`SKIP: shared quota e2e needs ${REDIS} (apt-get install -y redis-server)`);

let be: EchoBackend;
let redis: RedisProc | undefined;
const gws: GatewayProcess[] = [];

beforeAll(async () => {
  if (!hasRedis) return;
  be = await startEchoBackend();
  redis = await startRedis();
  const yaml = `
server:
  store: redis://127.0.0.1:${redis.port}
  storeUnavailable: closed
routes:
  - id: api
    frontend: { domains: [api.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
  - { clientId: shared, clientSecret: shared-secret, dailyQuota: 100 }
`;
  // "closed": until a gateway has connected, calls get 503 — wait for the first 200 before counting.
  for (let i = 0; i < 2; i++) gws.push(await startGateway(yaml));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await fetch(`${gws[0].url}/`, { headers: { host: "api.test", authorization: basic("shared", "shared-secret") } });
    if (r.status === 200) break;
    if (Date.now() > deadline) throw new Error(`redis never became ready (${r.status})`);
    await Bun.sleep(50);
  }
});
afterAll(async () => {
  for (const g of gws) await g.stop();
  await redis?.stop();
  await be?.stop();
});

describe(`quotas shared through Redis (${RUNTIME})`, () => {
  test.skipIf(!hasRedis)("two gateways enforcing a daily quota of 100 allow exactly 100 calls between them", async () => {
    // One call was spent above waiting for Redis; 160 more, alternating gateways, in parallel.
    const results = await Promise.all(
      Array.from({ length: 160 }, (_, i) =>
        fetch(`${gws[i % 2].url}/`, { headers: { host: "api.test", authorization: basic("shared", "shared-secret") } }).then(async (r) => {
          await r.arrayBuffer();
          return { status: r.status, retryAfter: r.headers.get("retry-after") };
        })),
    );
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.status === 429);
    expect(ok).toBe(99);
    expect(limited.length).toBe(61);
    expect(limited.every((r) => Number(r.retryAfter) >= 1)).toBe(true);
  });
});
