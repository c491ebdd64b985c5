import { describe, expect, test } from "bun:test";
import { renewalTime, RETRY_BASE_MS, RETRY_CAP_MS, retryDelay } from "../../../src/tls/acme/schedule.ts";

const DAY = 86_400_000;

describe("renewal time", () => {
  test("default: with a third of the lifetime left (day 60 of a 90-day certificate)", () => {
    expect(renewalTime(0, 90 * DAY, undefined)).toEqual({ at: 60 * DAY, clamped: false });
  });
  test("renewBefore days before notAfter, fractions allowed", () => {
    expect(renewalTime(0, 90 * DAY, 30)).toEqual({ at: 60 * DAY, clamped: false });
    expect(renewalTime(0, 90 * DAY, 0.5).at).toBe(89.5 * DAY);
  });
  test("a renewBefore that covers the whole lifetime falls back to the default instead of renewing forever", () => {
    expect(renewalTime(0, 7 * DAY, 30)).toEqual({ at: (7 * DAY * 2) / 3, clamped: true });
    expect(renewalTime(0, 7 * DAY, 7).clamped).toBe(true);
  });
});

describe("retry delay", () => {
  test("doubles from the base, within ±20 % jitter, and is capped", () => {
    for (let n = 1; n <= 30; n++) {
      for (const r of [0, 0.5, 1]) {
        const d = retryDelay(n, r);
        const exp = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (n - 1));
        expect(d).toBeGreaterThanOrEqual(Math.floor(exp * 0.8));
        expect(d).toBeLessThanOrEqual(Math.ceil(exp * 1.2));
      }
    }
    expect(retryDelay(1, 0.5)).toBe(RETRY_BASE_MS);
    expect(retryDelay(2, 0.5)).toBe(2 * RETRY_BASE_MS);
  });
  test("never a tight loop, whatever random() returns", () => {
    for (const r of [-5, 0, Number.NaN, 7]) expect(retryDelay(1, r)).toBeGreaterThanOrEqual(RETRY_BASE_MS * 0.8);
  });
  test("a server's Retry-After wins when it is longer, up to a day", () => {
    expect(retryDelay(1, 0.5, 3_600_000)).toBe(3_600_000);
    expect(retryDelay(1, 0.5, 10)).toBe(RETRY_BASE_MS);
    expect(retryDelay(1, 0.5, 90 * DAY)).toBe(DAY);
  });
});
