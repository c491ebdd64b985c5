import { describe, expect, test } from "bun:test";
import { createFailureGuard, pairKey } from "../../../src/limits/failures.ts";

const T = Date.parse("2026-03-10T12:00:00Z");
const IP = "203.0.113.7";

describe("failure guard", () => {
  test("locks a (client, address) pair out after 10 failures in a minute", () => {
    const g = createFailureGuard({ maxFailures: 10, windowSeconds: 60 });
    for (let i = 0; i < 9; i++) g.recordFailure("app", IP, T + i * 1000);
    expect(g.retryAfter("app", IP, T + 9000)).toBe(0);
    g.recordFailure("app", IP, T + 9000);
    // The oldest failure (at T) leaves the window at T + 60 s.
    expect(g.retryAfter("app", IP, T + 9000)).toBe(51);
    expect(g.retryAfter("app", IP, T + 59_500)).toBe(1);
  });

  test("does not lock the same client out from another address, nor another client", () => {
    const g = createFailureGuard({ maxFailures: 10, windowSeconds: 60 });
    for (let i = 0; i < 10; i++) g.recordFailure("app", IP, T);
    expect(g.retryAfter("app", IP, T)).toBe(60);
    expect(g.retryAfter("app", "198.51.100.1", T)).toBe(0);
    expect(g.retryAfter("app", "2001:db8::1", T)).toBe(0);
    expect(g.retryAfter("other", IP, T)).toBe(0);
  });

  test("unlocks when the window frees a slot (sliding window)", () => {
    const g = createFailureGuard({ maxFailures: 10, windowSeconds: 60 });
    for (let i = 0; i < 10; i++) g.recordFailure("app", IP, T + i * 1000);
    expect(g.retryAfter("app", IP, T + 59_999)).toBe(1);
    expect(g.retryAfter("app", IP, T + 60_000)).toBe(0);
    // One new failure fills the freed slot again: wait for the next oldest (T + 1 s).
    g.recordFailure("app", IP, T + 60_000);
    expect(g.retryAfter("app", IP, T + 60_000)).toBe(1);
    expect(g.retryAfter("app", IP, T + 61_000)).toBe(0);
  });

  test("honours a configured threshold and window", () => {
    const g = createFailureGuard({ maxFailures: 3, windowSeconds: 10 });
    for (let i = 0; i < 3; i++) g.recordFailure("app", IP, T);
    expect(g.retryAfter("app", IP, T + 2500)).toBe(8);
    expect(g.retryAfter("app", IP, T + 10_000)).toBe(0);
  });

  test("forgets expired pairs lazily", () => {
    const g = createFailureGuard({ maxFailures: 10, windowSeconds: 60 });
    g.recordFailure("app", IP, T);
    expect(g.size).toBe(1);
    expect(g.retryAfter("app", IP, T + 60_000)).toBe(0);
    expect(g.size).toBe(0);
    for (let i = 0; i < 2000; i++) g.recordFailure(`c${i}`, IP, T);
    g.recordFailure("late", IP, T + 120_000); // the periodic sweep drops every expired pair
    for (let i = 0; i < 1100; i++) g.recordFailure(`d${i}`, IP, T + 120_000);
    expect(g.size).toBeLessThanOrEqual(1101);
  });

  test("bounds memory: the least recently failing pairs are evicted beyond the cap", () => {
    const g = createFailureGuard({ maxFailures: 2, windowSeconds: 60, maxTracked: 100 });
    for (let i = 0; i < 1000; i++) {
      g.recordFailure("app", `10.0.${i >> 8}.${i & 255}`, T);
      g.recordFailure("app", `10.0.${i >> 8}.${i & 255}`, T);
    }
    expect(g.size).toBe(100);
    expect(g.retryAfter("app", "10.0.3.231", T)).toBe(60); // pair 999, the latest
    expect(g.retryAfter("app", "10.0.0.0", T)).toBe(0); // pair 0, evicted
  });

  test("a flood while locked out is not counted: the pair unlocks when its oldest counted failure leaves", () => {
    const g = createFailureGuard({ maxFailures: 10, windowSeconds: 60 });
    for (let i = 0; i < 10; i++) expect(g.recordFailure("app", IP, T + i)).toBe(0);
    // Locked: further failures are answered with the wait and leave no trace.
    let locked = 0;
    for (let i = 10; i < 60_000; i++) if (g.recordFailure("app", IP, T + i) > 0) locked++;
    expect(locked).toBe(60_000 - 10);
    expect(g.retryAfter("app", IP, T + 59_999)).toBe(1);
    expect(g.retryAfter("app", IP, T + 60_000)).toBe(0);
  });

  test("recordFailure says whether the pair was already locked out", () => {
    const g = createFailureGuard({ maxFailures: 2, windowSeconds: 10 });
    expect(g.recordFailure("app", IP, T)).toBe(0);
    expect(g.recordFailure("app", IP, T + 1000)).toBe(0);
    expect(g.recordFailure("app", IP, T + 2000)).toBe(8);
    expect(g.retryAfter("app", IP, T + 2000)).toBe(8);
  });

  // Issue 8 item 12: unknown ids are counted too, so random ids from an attacker fill the table.
  test("random client ids from one address: the table stays at its cap, the newest pairs kept", () => {
    const g = createFailureGuard({ maxFailures: 10, windowSeconds: 60, maxTracked: 1000 });
    for (let i = 0; i < 50_000; i++) g.recordFailure(`random-${i}-${"x".repeat(i % 300)}`, IP, T + i);
    expect(g.size).toBe(1000);
    expect(g.retryAfter("random-49999-" + "x".repeat(49_999 % 300), IP, T + 50_000)).toBe(0);
    for (let i = 0; i < 10; i++) g.recordFailure("random-49999-" + "x".repeat(49_999 % 300), IP, T + 50_000);
    expect(g.retryAfter("random-49999-" + "x".repeat(49_999 % 300), IP, T + 50_000)).toBeGreaterThan(0);
  });

  test("pair keys have a bounded length whatever the client sent, and stay distinct", () => {
    const long = "a".repeat(8192);
    const keys = [pairKey(long, IP), pairKey(long + "b", IP), pairKey(long, "2001:db8::1"), pairKey("app", IP), pairKey("app", "2001:db8::1")];
    for (const k of keys) expect(k.length).toBeLessThanOrEqual(80);
    expect(new Set(keys).size).toBe(keys.length);
    expect(pairKey("app", IP)).toBe(`${IP} app`);
  });
});
