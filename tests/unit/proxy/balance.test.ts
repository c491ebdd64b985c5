import { describe, expect, test } from "bun:test";
import { createBalancer } from "../../../src/proxy/balance.ts";

const take = <T>(next: () => T, n: number): T[] => Array.from({ length: n }, () => next());

describe("createBalancer", () => {
  test("weights 3:1 interleave as A A B A, repeating", () => {
    const next = createBalancer([{ name: "A", weight: 3 }, { name: "B", weight: 1 }]);
    expect(take(next, 8).map((t) => t.name).join("")).toBe("AABAAABA");
  });

  test("smooth: weights 5:1:1 never send five in a row to the heavy target", () => {
    const next = createBalancer([{ name: "a", weight: 5 }, { name: "b", weight: 1 }, { name: "c", weight: 1 }]);
    expect(take(next, 7).map((t) => t.name).join("")).toBe("aabacaa");
  });

  test("equal weights give plain round-robin in declaration order", () => {
    const next = createBalancer([{ n: 1, weight: 1 }, { n: 2, weight: 1 }, { n: 3, weight: 1 }]);
    expect(take(next, 6).map((t) => t.n)).toEqual([1, 2, 3, 1, 2, 3]);
  });

  test("shares follow the weights over a long run", () => {
    const next = createBalancer([{ n: "x", weight: 2 }, { n: "y", weight: 3 }, { n: "z", weight: 5 }]);
    const counts: Record<string, number> = { x: 0, y: 0, z: 0 };
    for (const t of take(next, 1000)) counts[t.n]!++;
    expect(counts).toEqual({ x: 200, y: 300, z: 500 });
  });

  test("deterministic: two balancers over the same targets agree", () => {
    const targets = [{ weight: 2 }, { weight: 7 }, { weight: 1 }];
    const a = createBalancer(targets);
    const b = createBalancer(targets);
    expect(take(a, 50).map((t) => targets.indexOf(t))).toEqual(take(b, 50).map((t) => targets.indexOf(t)));
  });

  test("a single target is returned every time", () => {
    const only = { weight: 1 };
    const next = createBalancer([only]);
    expect(take(next, 3)).toEqual([only, only, only]);
  });

  test("targets with weight 0 are never chosen; no positive weight is an error", () => {
    const next = createBalancer([{ n: "off", weight: 0 }, { n: "on", weight: 1 }]);
    expect(take(next, 3).map((t) => t.n)).toEqual(["on", "on", "on"]);
    expect(() => createBalancer([])).toThrow(RangeError);
    expect(() => createBalancer([{ weight: 0 }])).toThrow(RangeError);
  });
});
