// The per-target limiter and the process-wide budget, driven directly: slots, FIFO queue,
// refusals, client aborts, and release when a response body ends, fails or is cancelled.
import { describe, expect, test } from "bun:test";
import { errorResponse, GatewayError } from "../../../src/errors.ts";
import { createBalancer } from "../../../src/proxy/balance.ts";
import { LimiterRegistry, releasing, TargetLimiter, UpstreamBudget } from "../../../src/proxy/limiter.ts";

async function refusal(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof GatewayError) return e;
    throw e;
  }
  throw new Error("expected a refusal");
}

/** Lets queued promise callbacks run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

function limiter(max: number, queue: number, budgetMax = 1000) {
  const budget = new UpstreamBudget(budgetMax);
  return { budget, lim: new TargetLimiter(max, queue, budget) };
}

describe("TargetLimiter", () => {
  test("the fast path takes slots up to maxConnections and counts them in the budget", () => {
    const { budget, lim } = limiter(3, 0);
    expect([lim.tryAcquire(), lim.tryAcquire(), lim.tryAcquire(), lim.tryAcquire()]).toEqual([true, true, true, false]);
    expect(lim.active).toBe(3);
    expect(budget.active).toBe(3);
    expect(lim.hasRoom()).toBe(false);
    lim.release();
    expect(lim.active).toBe(2);
    expect(budget.active).toBe(2);
    expect(lim.hasRoom()).toBe(true);
  });

  test("waiters get slots in arrival order, each from a release", async () => {
    const { budget, lim } = limiter(1, 10);
    expect(lim.tryAcquire()).toBe(true);
    const order: string[] = [];
    const waits = ["a", "b", "c"].map((n) => lim.acquire(5000).then(() => order.push(n)));
    expect(lim.queued).toBe(3);
    // Nobody jumps the queue: a new arrival finds no free slot while others wait.
    expect(lim.tryAcquire()).toBe(false);
    for (const expected of [["a"], ["a", "b"], ["a", "b", "c"]]) {
      lim.release();
      await settle();
      expect(order).toEqual(expected);
      expect(lim.active).toBe(1);
    }
    await Promise.all(waits);
    lim.release();
    expect(lim.active).toBe(0);
    expect(budget.active).toBe(0);
    expect(lim.queued).toBe(0);
  });

  test("a full queue is refused at once with 503 ERR_UPSTREAM_BUSY, Retry-After and the Otoroshi body", async () => {
    const { lim } = limiter(1, 1);
    lim.tryAcquire();
    const queued = lim.acquire(5000);
    const err = await refusal(lim.acquire(5000));
    expect(err.status).toBe(503);
    expect(err.code).toBe("ERR_UPSTREAM_BUSY");
    const res = errorResponse(err);
    expect(res.headers.get("retry-after")).toBe("1");
    expect(res.headers.get("otoroshi-error")).toBe("true");
    expect(await res.json()).toEqual({ "Otoroshi-Error": err.message });
    lim.release();
    await queued;
  });

  test("queueSize 0: no waiting at all", async () => {
    const { lim } = limiter(1, 0);
    lim.tryAcquire();
    expect((await refusal(lim.acquire(5000))).code).toBe("ERR_UPSTREAM_BUSY");
  });

  test("a spent process-wide budget refuses a target that still has room, without queueing", async () => {
    const budget = new UpstreamBudget(2);
    const slow = new TargetLimiter(10, 10, budget);
    const other = new TargetLimiter(10, 10, budget);
    expect(slow.tryAcquire() && slow.tryAcquire()).toBe(true);
    expect(other.tryAcquire()).toBe(false);
    const err = await refusal(other.acquire(5000));
    expect(err.code).toBe("ERR_UPSTREAM_BUSY");
    expect(other.queued).toBe(0);
    slow.release();
    expect(other.tryAcquire()).toBe(true);
    expect(budget.active).toBe(2);
  });

  test("a target at its limit with the budget spent hands its own released slot to its waiter", async () => {
    const budget = new UpstreamBudget(2);
    const lim = new TargetLimiter(2, 5, budget);
    lim.tryAcquire();
    lim.tryAcquire();
    let granted = false;
    const w = lim.acquire(5000).then(() => (granted = true));
    lim.release();
    await w;
    expect(granted).toBe(true);
    expect(budget.active).toBe(2);
  });

  test("a wait longer than the timeout ends in 503, and the place is freed", async () => {
    const { lim } = limiter(1, 1);
    lim.tryAcquire();
    const err = await refusal(lim.acquire(30));
    expect(err.status).toBe(503);
    expect(err.code).toBe("ERR_UPSTREAM_BUSY");
    expect(lim.queued).toBe(0);
    // The place is free again: another call may wait.
    const next = lim.acquire(5000);
    lim.release();
    await next;
    expect(lim.active).toBe(1);
  });

  test("a client that leaves while queued gets 499, frees its place and is skipped by release", async () => {
    const { budget, lim } = limiter(1, 1);
    lim.tryAcquire();
    const leaving = new AbortController();
    const first = lim.acquire(5000, leaving.signal);
    expect((await refusal(lim.acquire(5000))).code).toBe("ERR_UPSTREAM_BUSY");
    leaving.abort(new Error("client went away"));
    const err = await refusal(first);
    expect(err.status).toBe(499);
    expect(err.code).toBe("ERR_CLIENT_CLOSED");
    expect(lim.queued).toBe(0);
    let second = false;
    const w = lim.acquire(5000).then(() => (second = true));
    lim.release();
    await w;
    expect(second).toBe(true);
    lim.release();
    expect(budget.active).toBe(0);
    // Already gone before asking: refused without queueing.
    expect((await refusal(lim.acquire(5000, AbortSignal.abort()))).status).toBe(499);
  });

  test("many cancelled waiters leave no trace in the counts", async () => {
    const { budget, lim } = limiter(1, 1000);
    lim.tryAcquire();
    const controllers = Array.from({ length: 500 }, () => new AbortController());
    const waits = controllers.map((c) => lim.acquire(5000, c.signal).catch((e: GatewayError) => e.status));
    const kept = lim.acquire(5000);
    for (const c of controllers) c.abort();
    expect(await Promise.all(waits)).toEqual(controllers.map(() => 499));
    expect(lim.queued).toBe(1);
    lim.release();
    await kept;
    lim.release();
    expect([lim.active, lim.queued, budget.active]).toEqual([0, 0, 0]);
  });

  test("a reload that raises maxConnections lets waiters in at once", async () => {
    const reg = new LimiterRegistry(new UpstreamBudget(100));
    const lim = reg.get("k", 1, 5);
    lim.tryAcquire();
    const w = [lim.acquire(5000), lim.acquire(5000)];
    expect(reg.get("k", 3, 5)).toBe(lim);
    await Promise.all(w);
    expect(lim.active).toBe(3);
  });

  test("the registry keeps a limiter across snapshots and drops idle ones no longer named", () => {
    const reg = new LimiterRegistry(new UpstreamBudget(100));
    const a = reg.get("a", 2, 2);
    const b = reg.get("b", 2, 2);
    b.tryAcquire();
    reg.retainOnly(new Set(["x"]));
    expect(reg.get("a", 2, 2)).not.toBe(a);
    expect(reg.get("b", 2, 2)).toBe(b);
  });
});

describe("releasing(): the slot lasts until the body is over", () => {
  function source(chunks: number, fail = false) {
    let sent = 0;
    return new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent === chunks) return fail ? c.error(new Error("backend reset")) : c.close();
        sent++;
        c.enqueue(new Uint8Array(8));
      },
    });
  }

  test("released once when the body ends, not before", async () => {
    let released = 0;
    const reader = releasing(source(3), () => released++).getReader();
    for (let i = 0; i < 3; i++) {
      expect((await reader.read()).done).toBe(false);
      expect(released).toBe(0);
    }
    expect((await reader.read()).done).toBe(true);
    expect(released).toBe(1);
  });

  test("released when the client cancels the body", async () => {
    let released = 0;
    const body = releasing(source(100), () => released++);
    const reader = body.getReader();
    await reader.read();
    await reader.cancel("client left");
    expect(released).toBe(1);
  });

  test("released when the backend's body fails", async () => {
    let released = 0;
    const reader = releasing(source(1, true), () => released++).getReader();
    await reader.read();
    await expect(reader.read()).rejects.toThrow("backend reset");
    expect(released).toBe(1);
  });
});

describe("the balancer and connection limits", () => {
  test("a target at its limit is skipped while another has room; with none, the weighted choice stays", () => {
    const budget = new UpstreamBudget(100);
    const targets = [
      { name: "a", weight: 3, limiter: new TargetLimiter(1, 10, budget) },
      { name: "b", weight: 1, limiter: new TargetLimiter(1, 10, budget) },
    ];
    const pick = createBalancer(targets, (t) => t.limiter.hasRoom());
    expect(pick().name).toBe("a");
    targets[0]!.limiter.tryAcquire();
    expect([pick().name, pick().name]).toEqual(["b", "b"]);
    targets[1]!.limiter.tryAcquire();
    // Both full: the smooth weighted round-robin sequence decides (its call will queue there).
    const seq = Array.from({ length: 4 }, () => pick().name);
    expect(seq.filter((n) => n === "a").length).toBe(3);
  });
});
