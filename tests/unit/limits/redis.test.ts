// The Redis backend against a real redis-server started here (127.0.0.1, a free port, no
// persistence) and stopped by PID. Skipped with a message when redis-server is not installed.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { ApiKey } from "../../../src/config/schema.ts";
import { GatewayError } from "../../../src/errors.ts";
import { getLogLevel, setLogLevel, setLogSink } from "../../../src/log.ts";
import { type ApiKeyRecord, ApiKeyRegistry } from "../../../src/plugins/apikeys/registry.ts";
import { createQuotaEnforcer, type QuotaEnforcerHandle } from "../../../src/limits/quotas.ts";
import { encodeCommand, parseRedisUrl, parseReply, RedisError } from "../../../src/limits/redis.ts";
import { freePort, hasRedis, REDIS, type RedisProc, startRedis } from "../../helpers/redis.ts";

if (!hasRedis) console.warn(`SKIP: Redis quota tests need ${REDIS} (apt-get install -y redis-server)`);

const T = Date.parse("2026-03-10T12:00:00.000Z");
const key = (limits: { throttlingQuota?: number; dailyQuota?: number; monthlyQuota?: number }, clientId = "app"): ApiKeyRecord =>
  new ApiKeyRegistry([ApiKey.parse({ clientId, clientSecret: "s", ...limits })]).get(clientId)!;
const headers = (list: [string, string][]) => Object.fromEntries(list.map(([k, v]) => [k.toLowerCase(), v]));

describe("RESP", () => {
  test("encodes commands as arrays of bulk strings (byte lengths)", () => {
    expect(encodeCommand(["SET", "k", "é"])).toBe("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\né\r\n");
  });

  test("parses every RESP2 type and waits for incomplete replies", () => {
    const all = Buffer.from("+OK\r\n-ERR bad\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n:1\r\n*1\r\n$0\r\n\r\n");
    const out = [];
    for (let pos = 0, r = parseReply(all, 0); r; r = parseReply(all, pos)) {
      out.push(r[0]);
      pos = r[1];
    }
    expect(out.slice(0, 1).concat(out.slice(2))).toEqual(["OK", 42, "abc", null, [1, [""]]]);
    expect(out[1]).toBeInstanceOf(RedisError);
    for (let cut = 1; cut < 14; cut++) expect(parseReply(Buffer.from("*2\r\n:1\r\n$3\r\nabc\r\n").subarray(0, cut), 0)).toBeUndefined();
    expect(() => parseReply(Buffer.from("?x\r\n"), 0)).toThrow("protocol error");
  });

  test("reads host, port, database and credentials from the URL", () => {
    expect(parseRedisUrl("redis://cache:6380/2")).toEqual({ host: "cache", port: 6380, db: 2, tls: false });
    expect(parseRedisUrl("rediss://u:p%40ss@[::1]")).toEqual({ host: "::1", port: 6379, db: 0, tls: true, username: "u", password: "p@ss" });
    expect(parseRedisUrl("redis://:pw@h").password).toBe("pw");
    expect(() => parseRedisUrl("redis://h/x")).toThrow("database");
    expect(() => parseRedisUrl("redis://:pw@[bad")).toThrow(/^server\.store: not a valid Redis URL$/);
  });
});

describe.skipIf(!hasRedis)("quota enforcer (Redis)", () => {
  let redis: RedisProc;
  const open: QuotaEnforcerHandle[] = [];
  const enforcer = (url: string, storeUnavailable: "open" | "closed" = "open") => {
    const q = createQuotaEnforcer({ stateDir: tmpdir(), store: url, storeUnavailable, flushIntervalMs: 60_000 });
    open.push(q);
    return q;
  };
  let url = "";
  let ids = 0;
  const id = () => `client-${++ids}`; // one Redis for the file: each test counts for its own keys

  beforeAll(async () => {
    redis = await startRedis();
    url = `redis://127.0.0.1:${redis.port}`;
  });
  afterEach(async () => {
    for (const q of open.splice(0)) await q.close();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  test("lets exactly 50 of 100 parallel calls through a daily quota of 50", async () => {
    const q = enforcer(url);
    const c = id();
    const k = key({ dailyQuota: 50 }, c);
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => q.consume(c, k, T)));
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(50);
    expect(results.every((r) => r.status === "fulfilled" || ((r.reason as GatewayError).status === 429 && (r.reason as GatewayError).code === "ERR_QUOTA_EXCEEDED"))).toBe(true);
    expect(q.status()).toEqual({ store: "redis", healthy: true });
  });

  test("two gateways sharing one Redis allow exactly 100 of a daily quota of 100 between them", async () => {
    const a = enforcer(url);
    const b = enforcer(url);
    const c = id();
    const k = key({ dailyQuota: 100 }, c);
    const calls = Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).consume(c, k, T));
    const results = await Promise.allSettled(calls);
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(100);
    expect(headers(await Promise.resolve(a.consume(c, key({ dailyQuota: 101 }, c), T)))["otoroshi-daily-calls-remaining"]).toBe("0");
  });

  test("counts down, refuses with Retry-After, and resets at the UTC day, month and second", async () => {
    const q = enforcer(url);
    const c = id();
    const k = key({ throttlingQuota: 5, dailyQuota: 2, monthlyQuota: 3 }, c);
    const last = Date.parse("2026-01-31T23:59:59.999Z");
    expect(headers(await q.consume(c, k, last))).toMatchObject({ "otoroshi-daily-calls-remaining": "1", "otoroshi-monthly-calls-remaining": "2" });
    expect(headers(await q.consume(c, k, last))["otoroshi-daily-calls-remaining"]).toBe("0");
    let err: GatewayError | undefined;
    await Promise.resolve(q.consume(c, k, last)).catch((e: GatewayError) => (err = e));
    expect(err?.status).toBe(429);
    expect(err?.headers["retry-after"]).toBe("1");
    const next = headers(await q.consume(c, k, Date.parse("2026-02-01T00:00:00Z")));
    expect(next).toMatchObject({ "otoroshi-daily-calls-remaining": "1", "otoroshi-monthly-calls-remaining": "2" });
  });

  test("selects the database and authenticates from the URL", async () => {
    const secured = await startRedis(undefined, ["--requirepass", "s3cret"]);
    setLogSink(() => {}); // the expected quota.store_unavailable line
    try {
      const good = enforcer(`redis://:s3cret@127.0.0.1:${secured.port}/3`, "closed");
      expect(headers(await good.consume("x", key({ dailyQuota: 5 }, "x"), T))["otoroshi-daily-calls-remaining"]).toBe("4");
      const bad = enforcer(`redis://:wrong@127.0.0.1:${secured.port}`, "closed");
      await expect(Promise.resolve().then(() => bad.consume("x", key({ dailyQuota: 5 }, "x"), T))).rejects.toMatchObject({ status: 503 });
      expect(bad.status().lastError).toMatch(/WRONGPASS|invalid password/);
    } finally {
      setLogSink((l) => process.stderr.write(l + "\n"));
      await secured.stop();
    }
  });
});

describe.skipIf(!hasRedis)("Redis unavailable", () => {
  const lines: Record<string, unknown>[] = [];
  const level = getLogLevel();
  beforeAll(() => {
    setLogLevel("debug"); // the suite may run with OTOROSHI_LOG_LEVEL=warn; these tests read info lines
    setLogSink((l) => lines.push(JSON.parse(l)));
  });
  afterAll(() => {
    setLogLevel(level);
    setLogSink((l) => process.stderr.write(l + "\n"));
  });
  const k = key({ dailyQuota: 1 });

  test('"open" allows the call without quota headers, logs once per 10 s, and shows it in status()', async () => {
    const q = createQuotaEnforcer({ stateDir: tmpdir(), store: `redis://127.0.0.1:${await freePort()}`, storeUnavailable: "open", flushIntervalMs: 1000 });
    try {
      lines.length = 0;
      for (let i = 0; i < 3; i++) expect(await q.consume("app", k, T)).toEqual([]);
      expect(lines.filter((l) => l.event === "quota.store_unavailable")).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: "warn", mode: "open", store: "redis" });
      expect(q.status()).toMatchObject({ store: "redis", healthy: false, lastError: expect.stringContaining("ECONNREFUSED") });
    } finally {
      await q.close();
    }
  });

  test('"closed" answers 503 "Quota store unavailable"', async () => {
    const q = createQuotaEnforcer({ stateDir: tmpdir(), store: `redis://127.0.0.1:${await freePort()}`, storeUnavailable: "closed", flushIntervalMs: 1000 });
    try {
      const err = await Promise.resolve().then(() => q.consume("app", k, T)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GatewayError);
      expect(err).toMatchObject({ status: 503, code: "ERR_INTERNAL", message: "Quota store unavailable" });
    } finally {
      await q.close();
    }
  });

  test("a Redis that accepts but never answers times out after 500 ms", async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as { port: number }).port;
    const q = createQuotaEnforcer({ stateDir: tmpdir(), store: `redis://127.0.0.1:${port}`, storeUnavailable: "closed", flushIntervalMs: 1000 });
    try {
      const started = performance.now();
      const err = await Promise.resolve().then(() => q.consume("app", k, T)).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 503 });
      expect(performance.now() - started).toBeLessThan(1500);
      expect(q.status().lastError).toContain("timed out");
    } finally {
      await q.close();
      silent.close();
    }
  });

  test("recovers when Redis comes back", async () => {
    let redis = await startRedis();
    const q = createQuotaEnforcer({ stateDir: tmpdir(), store: `redis://127.0.0.1:${redis.port}`, storeUnavailable: "open", flushIntervalMs: 1000 });
    try {
      const k5 = key({ dailyQuota: 5 }, "back");
      expect(headers(await q.consume("back", k5, T))["otoroshi-daily-calls-remaining"]).toBe("4");
      await redis.stop();
      expect(await q.consume("back", k5, T)).toEqual([]);
      expect(q.status().healthy).toBe(false);
      redis = await startRedis(redis.port);
      let h: Record<string, string> = {};
      for (let i = 0; i < 40 && !h["otoroshi-daily-calls-remaining"]; i++) {
        await Bun.sleep(100); // past the reconnect backoff
        h = headers(await q.consume("back", k5, T));
      }
      expect(h["otoroshi-daily-calls-remaining"]).toBe("4"); // a fresh Redis (no persistence here)
      expect(q.status()).toEqual({ store: "redis", healthy: true });
      expect(lines.some((l) => l.event === "quota.store_recovered")).toBe(true);
    } finally {
      await q.close();
      await redis.stop();
    }
  });
});
