import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiKey } from "../../../src/config/schema.ts";
import { errorResponse, GatewayError } from "../../../src/errors.ts";
import { getLogLevel, setLogLevel, setLogSink } from "../../../src/log.ts";
import { type ApiKeyRecord, ApiKeyRegistry } from "../../../src/plugins/apikeys/registry.ts";
import { createQuotaEnforcer, type QuotaEnforcerHandle, quotaWindows } from "../../../src/limits/quotas.ts";

const root = mkdtempSync(join(tmpdir(), "oto-quotas-"));
let n = 0;
const freshDir = () => join(root, `case-${++n}`);
const open: QuotaEnforcerHandle[] = [];
afterEach(async () => {
  for (const q of open.splice(0)) await q.close();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function key(limits: { throttlingQuota?: number; dailyQuota?: number; monthlyQuota?: number }, clientId = "app"): ApiKeyRecord {
  return new ApiKeyRegistry([ApiKey.parse({ clientId, clientSecret: "s", ...limits })]).get(clientId)!;
}

function enforcer(stateDir = freshDir(), flushIntervalMs = 60_000): QuotaEnforcerHandle {
  const q = createQuotaEnforcer({ stateDir, storeUnavailable: "open", flushIntervalMs });
  open.push(q);
  return q;
}

async function refusal(fn: () => unknown): Promise<GatewayError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error("expected a GatewayError");
}

const headers = (list: [string, string][]) => Object.fromEntries(list.map(([k, v]) => [k.toLowerCase(), v]));
const T = Date.parse("2026-03-10T12:00:00.000Z");

function captureLogs(): { lines: Record<string, unknown>[]; restore(): void } {
  const lines: Record<string, unknown>[] = [];
  const level = getLogLevel();
  setLogLevel("debug");
  setLogSink((l) => lines.push(JSON.parse(l)));
  return {
    lines,
    restore: () => {
      setLogLevel(level);
      setLogSink((l) => process.stderr.write(l + "\n"));
    },
  };
}

describe("quota windows", () => {
  test("are whole UTC seconds, UTC days and UTC months", () => {
    const [s, d, m] = quotaWindows(Date.parse("2026-01-31T23:59:59.999Z"), {});
    expect(s).toMatchObject({ id: "1769903999", resetAt: Date.parse("2026-02-01T00:00:00Z"), span: 1 });
    expect(d).toMatchObject({ id: "2026-01-31", resetAt: Date.parse("2026-02-01T00:00:00Z"), span: 86_400 });
    expect(m).toMatchObject({ id: "2026-01", resetAt: Date.parse("2026-02-01T00:00:00Z"), span: 31 * 86_400 });
    expect(quotaWindows(Date.parse("2028-02-10T00:00:00Z"), {})[2]!.span).toBe(29 * 86_400);
  });
});

describe("quota enforcer (memory)", () => {
  test("lets exactly 50 of 100 parallel calls through a daily quota of 50", async () => {
    const q = enforcer();
    const k = key({ dailyQuota: 50 });
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => Promise.resolve().then(() => q.consume("app", k, T))));
    expect(results.filter((r) => r.status === "fulfilled").length).toBe(50);
    const refused = results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as GatewayError);
    expect(refused.length).toBe(50);
    expect(refused.every((e) => e.status === 429 && e.code === "ERR_QUOTA_EXCEEDED")).toBe(true);
  });

  test("counts down the remaining calls, then refuses with 429, Retry-After and Otoroshi's body", async () => {
    const q = enforcer();
    const k = key({ dailyQuota: 3, monthlyQuota: 100 });
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(headers(await q.consume("app", k, T)));
    expect(seen.map((h) => h["otoroshi-daily-calls-remaining"])).toEqual(["2", "1", "0"]);
    expect(seen.map((h) => h["otoroshi-monthly-calls-remaining"])).toEqual(["99", "98", "97"]);
    expect(seen[0]!["ratelimit-policy"]).toBe('"daily";q=3;w=86400, "monthly";q=100;w=2678400');
    expect(seen[0]!["ratelimit"]).toBe('"daily";r=2;t=43200');

    const err = await refusal(() => q.consume("app", k, T));
    expect(err.status).toBe(429);
    expect(err.code).toBe("ERR_QUOTA_EXCEEDED");
    expect(err.message).toBe("You performed too much requests");
    expect(err.headers["retry-after"]).toBe("43200"); // 12:00 → midnight UTC
    expect(err.headers["ratelimit"]).toBe('"daily";r=0;t=43200');
    expect(err.headers["otoroshi-daily-calls-remaining"]).toBe("0");
    expect(err.headers["otoroshi-monthly-calls-remaining"]).toBe("97"); // the refusal was not counted
    const res = errorResponse(err);
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("43200");
    expect(await res.json()).toEqual({ "Otoroshi-Error": "You performed too much requests" });
  });

  test("resets the throttling window at the next whole UTC second", async () => {
    const q = enforcer();
    const k = key({ throttlingQuota: 2 });
    const t0 = Date.parse("2026-03-10T12:00:00.250Z");
    await q.consume("app", k, t0);
    expect(headers(await q.consume("app", k, t0 + 100))).toEqual({ "ratelimit-policy": '"second";q=2;w=1', ratelimit: '"second";r=0;t=1' });
    const err = await refusal(() => q.consume("app", k, t0 + 749)); // 12:00:00.999
    expect(err.headers["retry-after"]).toBe("1");
    expect(headers(await q.consume("app", k, t0 + 750))).toMatchObject({ ratelimit: '"second";r=1;t=1' }); // 12:00:01.000
  });

  test("uses UTC day and month boundaries", async () => {
    const q = enforcer();
    const k = key({ dailyQuota: 1, monthlyQuota: 2 });
    const lastMs = Date.parse("2026-01-31T23:59:59.999Z");
    await q.consume("app", k, lastMs);
    const err = await refusal(() => q.consume("app", k, lastMs));
    expect(err.headers["retry-after"]).toBe("1");
    const h = headers(await q.consume("app", k, Date.parse("2026-02-01T00:00:00Z")));
    expect(h["otoroshi-daily-calls-remaining"]).toBe("0");
    expect(h["otoroshi-monthly-calls-remaining"]).toBe("1"); // a new month too
  });

  test("does not count refused calls", async () => {
    const q = enforcer();
    const k = key({ throttlingQuota: 1, dailyQuota: 10 });
    await q.consume("app", k, T);
    await refusal(() => q.consume("app", k, T + 10));
    await refusal(() => q.consume("app", k, T + 20));
    expect(headers(await q.consume("app", k, T + 1000))["otoroshi-daily-calls-remaining"]).toBe("8");
  });

  test("waits for the last exceeded window when several are exceeded", async () => {
    const q = enforcer();
    const k = key({ throttlingQuota: 1, dailyQuota: 1 });
    await q.consume("app", k, T);
    const err = await refusal(() => q.consume("app", k, T + 1));
    expect(err.headers["retry-after"]).toBe("43200");
    expect(err.headers["ratelimit"]).toBe('"daily";r=0;t=43200');
  });

  test("applies a limit changed by a reload to the count already made", async () => {
    const q = enforcer();
    for (let i = 0; i < 5; i++) await q.consume("app", key({ dailyQuota: 10 }), T);
    await refusal(() => q.consume("app", key({ dailyQuota: 5 }), T));
    expect(headers(await q.consume("app", key({ dailyQuota: 8 }), T))["otoroshi-daily-calls-remaining"]).toBe("2");
  });

  test("counts per client id, and adds nothing for a key without quotas", async () => {
    const q = enforcer();
    await q.consume("a", key({ dailyQuota: 1 }, "a"), T);
    expect(headers(await q.consume("b", key({ dailyQuota: 1 }, "b"), T))["otoroshi-daily-calls-remaining"]).toBe("0");
    expect(q.consume("free", key({}, "free"), T)).toEqual([]);
    expect(q.status()).toEqual({ store: "memory", healthy: true });
  });
});

describe("quota persistence (memory store)", () => {
  test("keeps the counts across a restart (close, then a new enforcer on the same stateDir)", async () => {
    const dir = freshDir();
    const k = key({ dailyQuota: 10, monthlyQuota: 100 });
    const first = createQuotaEnforcer({ stateDir: dir, storeUnavailable: "open", flushIntervalMs: 60_000 });
    const now = Date.now(); // one instant: both enforcers count in the same windows
    for (let i = 0; i < 3; i++) await first.consume("app", k, now);
    await first.close();
    const file = join(dir, "quotas.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const second = enforcer(dir);
    const h = headers(await second.consume("app", k, now));
    expect(h["otoroshi-daily-calls-remaining"]).toBe("6");
    expect(h["otoroshi-monthly-calls-remaining"]).toBe("96");
  });

  test("writes the counters every flush interval without waiting for close()", async () => {
    const dir = freshDir();
    const q = enforcer(dir, 100);
    await q.consume("app", key({ dailyQuota: 10 }), Date.now());
    await Bun.sleep(350);
    const saved = JSON.parse(readFileSync(join(dir, "quotas.json"), "utf8"));
    expect(saved.version).toBe(1);
    expect(saved.counters["d:app"].n).toBe(1);
  });

  test("ignores entries whose window has passed", async () => {
    const dir = freshDir();
    const q1 = createQuotaEnforcer({ stateDir: dir, storeUnavailable: "open", flushIntervalMs: 60_000 });
    const k = key({ dailyQuota: 10 });
    await q1.consume("app", k, Date.now());
    await q1.close();
    const file = join(dir, "quotas.json");
    const saved = JSON.parse(readFileSync(file, "utf8"));
    saved.counters["d:app"].exp = Date.now() - 1;
    writeFileSync(file, JSON.stringify(saved));
    expect(headers(await enforcer(dir).consume("app", k, Date.now()))["otoroshi-daily-calls-remaining"]).toBe("9");
  });

  for (
    const [name, content] of [
      ["not JSON", "{ this is not json"],
      ["a wrong shape", JSON.stringify({ version: 1, counters: { "d:app": { w: 5, n: "x" } } })],
      ["another version", JSON.stringify({ version: 99, counters: {} })],
    ] as const
  ) {
    test(`starts empty with a warning when quotas.json is ${name}`, async () => {
      const dir = freshDir();
      const logs = captureLogs();
      try {
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, "quotas.json"), content);
        const q = enforcer(dir);
        expect(headers(await q.consume("app", key({ dailyQuota: 10 }), Date.now()))["otoroshi-daily-calls-remaining"]).toBe("9");
        expect(logs.lines.some((l) => l.event === "quota.state_corrupt" && l.level === "warn")).toBe(true);
        expect(existsSync(join(dir, "quotas.json.corrupt"))).toBe(true);
      } finally {
        logs.restore();
      }
    });
  }

  test("reports a state directory it cannot write in status() and keeps serving", async () => {
    const file = join(freshDir() + "-file");
    writeFileSync(file, "not a directory");
    const logs = captureLogs();
    try {
      const q = createQuotaEnforcer({ stateDir: file, storeUnavailable: "open", flushIntervalMs: 60_000 });
      await q.consume("app", key({ dailyQuota: 10 }), Date.now());
      await q.close();
      const s = q.status();
      expect(s.healthy).toBe(false);
      expect(s.lastError).toContain("quotas.json");
      expect(logs.lines.some((l) => l.event === "quota.persist_failed")).toBe(true);
    } finally {
      logs.restore();
    }
  });
});
