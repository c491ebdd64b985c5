// The failed-secret limiter shared through a real redis-server (127.0.0.1, a free port, no
// persistence), started here and stopped by PID (issue 8 item 12). Skipped with a notice when
// redis-server is not installed.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { getLogLevel, setLogLevel, setLogSink } from "../../../src/log.ts";
import { createSharedFailureGuard, type FailureGuardHandle, LimiterUnavailable } from "../../../src/limits/failures.ts";
import { parseRedisUrl, RedisClient } from "../../../src/limits/redis.ts";
import { freePort, hasRedis, REDIS, type RedisProc, startRedis } from "../../helpers/redis.ts";

if (!hasRedis) console.warn(`SKIP: shared failed-secret limiter tests need ${REDIS} (apt-get install -y redis-server)`);

const T = Date.parse("2026-03-10T12:00:00.000Z");
const IP = "203.0.113.7";

describe.skipIf(!hasRedis)("failed-secret limiter shared through Redis", () => {
  let redis: RedisProc;
  let url = "";
  const open: FailureGuardHandle[] = [];
  const guard = (opts: { maxFailures?: number; windowSeconds?: number; storeUnavailable?: "open" | "closed"; store?: string } = {}) => {
    const g = createSharedFailureGuard({ maxFailures: opts.maxFailures ?? 10, windowSeconds: opts.windowSeconds ?? 60, store: opts.store ?? url, storeUnavailable: opts.storeUnavailable ?? "open" });
    open.push(g);
    return g;
  };
  let ids = 0;
  const id = () => `client-${++ids}`; // one Redis for the file: each test counts for its own ids

  beforeAll(async () => {
    redis = await startRedis();
    url = `redis://127.0.0.1:${redis.port}`;
  });
  afterEach(async () => {
    for (const g of open.splice(0)) await g.close();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  test("two instances count one pair together and both see the lock, until the window frees a slot", async () => {
    const [a, b] = [guard(), guard()];
    const c = id();
    for (let i = 0; i < 10; i++) expect(await (i % 2 ? a : b).recordFailure(c, IP, T + i * 1000)).toBe(0);
    // The oldest failure (at T) leaves the window at T + 60 s.
    expect(await a.retryAfter(c, IP, T + 9000)).toBe(51);
    expect(await b.retryAfter(c, IP, T + 9000)).toBe(51);
    expect(await b.recordFailure(c, IP, T + 9000)).toBe(51);
    expect(await a.retryAfter(c, IP, T + 59_999)).toBe(1);
    expect(await a.retryAfter(c, IP, T + 60_000)).toBe(0);
    // Another address, another client: not affected.
    expect(await a.retryAfter(c, "198.51.100.1", T + 9000)).toBe(0);
    expect(await a.retryAfter(id(), IP, T + 9000)).toBe(0);
  });

  test("exact under concurrency: of 100 parallel wrong guesses from two instances, exactly 10 are counted", async () => {
    const [a, b] = [guard(), guard()];
    const c = id();
    const waits = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).recordFailure(c, IP, T)));
    expect(waits.filter((w) => w === 0).length).toBe(10);
    expect(waits.filter((w) => w === 60).length).toBe(90);
  });

  test("a known and an unknown id are the same to the limiter; long ids are hashed into the key", async () => {
    const g = guard({ maxFailures: 3 });
    const long = `unknown-${"x".repeat(8000)}`;
    const answers = async (clientId: string) => {
      const out: number[] = [];
      for (let i = 0; i < 5; i++) out.push(await g.recordFailure(clientId, IP, T + i));
      return out;
    };
    expect(await answers(id())).toEqual([0, 0, 0, 60, 60]);
    expect(await answers(long)).toEqual([0, 0, 0, 60, 60]);
    const client = new RedisClient(parseRedisUrl(url), 500);
    try {
      const keys = (await client.command(["KEYS", "otoroshi-lite:failed:*"])) as string[];
      expect(Math.max(...keys.map((k) => k.length))).toBeLessThanOrEqual(21 + 80);
      // Keys expire with the window: memory in Redis is bounded by what failed in the last window.
      for (const k of keys) expect((await client.command(["PTTL", k])) as number).toBeLessThanOrEqual(60_000);
    } finally {
      client.close();
    }
  });
});

describe.skipIf(!hasRedis)("failed-secret limiter when Redis is unavailable", () => {
  const lines: Record<string, unknown>[] = [];
  const level = getLogLevel();
  beforeAll(() => {
    setLogLevel("debug");
    setLogSink((l) => lines.push(JSON.parse(l)));
  });
  afterAll(() => {
    setLogLevel(level);
    setLogSink((l) => process.stderr.write(l + "\n"));
  });

  test('"open": this instance counts alone (its own limit still applies), logged once per 10 s', async () => {
    const g = createSharedFailureGuard({ maxFailures: 3, windowSeconds: 60, store: `redis://127.0.0.1:${await freePort()}`, storeUnavailable: "open" });
    try {
      lines.length = 0;
      const waits = [];
      for (let i = 0; i < 5; i++) waits.push(await g.recordFailure("app", IP, T));
      expect(waits).toEqual([0, 0, 0, 60, 60]);
      expect(await g.retryAfter("app", IP, T)).toBe(60);
      expect(lines.filter((l) => l.event === "failures.store_unavailable")).toHaveLength(1);
      expect(lines[0]).toMatchObject({ level: "warn", mode: "open", store: "redis" });
    } finally {
      await g.close();
    }
  });

  test('"closed": refused with a 503 error, never counted as a pass', async () => {
    const g = createSharedFailureGuard({ maxFailures: 3, windowSeconds: 60, store: `redis://127.0.0.1:${await freePort()}`, storeUnavailable: "closed" });
    try {
      for (const attempt of [() => g.retryAfter("app", IP, T), () => g.recordFailure("app", IP, T)]) {
        const err = await Promise.resolve().then(attempt).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(LimiterUnavailable);
        expect(err).toMatchObject({ status: 503 });
      }
    } finally {
      await g.close();
    }
  });

  test("goes back to the shared count when Redis comes back", async () => {
    let redis = await startRedis();
    const g = createSharedFailureGuard({ maxFailures: 3, windowSeconds: 60, store: `redis://127.0.0.1:${redis.port}`, storeUnavailable: "open" });
    try {
      expect(await g.recordFailure("back", IP, T)).toBe(0);
      await redis.stop();
      expect(await g.recordFailure("back", IP, T)).toBe(0); // counted locally
      redis = await startRedis(redis.port);
      const other = createSharedFailureGuard({ maxFailures: 3, windowSeconds: 60, store: `redis://127.0.0.1:${redis.port}`, storeUnavailable: "closed" });
      try {
        for (let i = 0; i < 3; i++) expect(await other.recordFailure("back", IP, T)).toBe(0);
        // The first guard sees the shared lock once past its reconnect backoff (bounded wait).
        let wait = 0;
        for (let i = 0; i < 60 && wait === 0; i++) {
          await Bun.sleep(100);
          wait = await g.retryAfter("back", IP, T);
        }
        expect(wait).toBe(60);
        expect(lines.some((l) => l.event === "failures.store_recovered")).toBe(true);
      } finally {
        await other.close();
      }
    } finally {
      await g.close();
      await redis.stop();
    }
  });
});
