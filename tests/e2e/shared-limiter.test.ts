// Two real gateway processes sharing the failed-secret limiter through a real redis-server (issue
// 8 item 12): wrong secrets sent to either count together, and an unknown client id gets exactly
// the answers an existing one gets. Skipped with a notice without redis-server.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { basic } from "../helpers/gateway.ts";
import { hasRedis, REDIS, type RedisProc, startRedis } from "../helpers/redis.ts";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";

if (!hasRedis) console.warn(`SKIP: shared limiter e2e needs ${REDIS} (apt-get install -y redis-server)`);

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
  failedAuth: { maxFailures: 10, windowSeconds: 60 }
routes:
  - id: api
    frontend: { domains: [api.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
    plugins: [{ plugin: Apikeys }]
plugins:
  - plugin: ClientCredentialService
    config: { domain: auth.test, secure: false }
apikeys:
  - { clientId: known-route, clientSecret: known-route-secret-0123 }
  - { clientId: known-token, clientSecret: known-token-secret-0123 }
`;
  for (let i = 0; i < 2; i++) gws.push(await startGateway(yaml));
  // "closed": until a gateway has connected, secret checks get 503 — wait for the first 200.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await fetch(`${gws[1].url}/`, { headers: { host: "api.test", authorization: basic("known-route", "known-route-secret-0123") } });
    await r.arrayBuffer();
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

/** 12 wrong attempts alternating between the gateways, as the client sees them. */
async function route(clientId: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 12; i++) {
    const r = await fetch(`${gws[i % 2].url}/`, { headers: { host: "api.test", authorization: basic(clientId, "wrong") } });
    out.push(`${r.status} ${r.headers.get("retry-after") !== null} ${await r.text()}`);
  }
  return out;
}

async function token(clientId: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < 12; i++) {
    const r = await fetch(`${gws[i % 2].url}/.well-known/otoroshi/oauth/token`, {
      method: "POST",
      headers: { host: "auth.test", "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "client_credentials", client_id: clientId, client_secret: "wrong" }),
    });
    out.push(`${r.status} ${r.headers.get("retry-after") !== null} ${await r.text()}`);
  }
  return out;
}

describe(`failed-secret limiter shared through Redis (${RUNTIME})`, () => {
  test.skipIf(!hasRedis)("on a route: 10 failures across two gateways lock the pair on both; an unknown id gets the same answers", async () => {
    const known = await route("known-route");
    expect(known.map((a) => a.slice(0, 3))).toEqual([...Array(10).fill("401"), "429", "429"]);
    expect(await route("never-declared-route-id")).toEqual(known);
    // Locked even with the right secret, at either gateway.
    for (const g of gws) {
      const r = await fetch(`${g.url}/`, { headers: { host: "api.test", authorization: basic("known-route", "known-route-secret-0123") } });
      expect(r.status).toBe(429);
      await r.arrayBuffer();
    }
  });

  test.skipIf(!hasRedis)("at the token endpoint: the same, in the OAuth error shape", async () => {
    const known = await token("known-token");
    expect(known.map((a) => a.slice(0, 3))).toEqual([...Array(10).fill("401"), "429", "429"]);
    expect(known[11]).toContain('"error":"invalid_client"');
    expect(await token("never-declared-token-id")).toEqual(known);
  });
});
