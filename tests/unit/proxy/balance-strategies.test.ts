import { describe, expect, test } from "bun:test";
import { createBalancer, type PickContext, rendezvous } from "../../../src/proxy/balance.ts";

interface T {
  n: string;
  weight: number;
  backup?: boolean;
  up?: boolean;
  load?: number;
}

const ctx = (ip: string, headers: Record<string, string> = {}): PickContext => {
  const h = new Headers(headers);
  return {
    clientIp: ip,
    req: { headers: h },
    cookies: () => new Map((h.get("cookie") ?? "").split(/;\s*/).filter(Boolean).map((c) => c.split("=", 2) as [string, string])),
  };
};

/** A deterministic PRNG (mulberry32) so distribution tests cannot flake. */
function seeded(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function counts(pick: () => T | null, n: number): Record<string, number> {
  const c: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const t = pick()!;
    c[t.n] = (c[t.n] ?? 0) + 1;
  }
  return c;
}

const three = (): T[] => [
  { n: "a", weight: 1, up: true, load: 0 },
  { n: "b", weight: 2, up: true, load: 0 },
  { n: "c", weight: 1, up: true, load: 0 },
];
const health = { usable: (t: T) => t.up !== false, suspect: () => true };

describe("Random (weighted)", () => {
  test("shares follow the weights within 3% over 20,000 picks", () => {
    const pick = createBalancer(three(), { type: "Random", random: seeded(7), ...health });
    const c = counts(() => pick(), 20_000);
    expect(Math.abs(c.a! / 20_000 - 0.25)).toBeLessThan(0.03);
    expect(Math.abs(c.b! / 20_000 - 0.5)).toBeLessThan(0.03);
    expect(Math.abs(c.c! / 20_000 - 0.25)).toBeLessThan(0.03);
  });
});

describe("LeastConnections", () => {
  test("picks the target with the fewest calls in flight per weight; idle ones share", () => {
    const ts = three();
    const pick = createBalancer(ts, { type: "LeastConnections", inFlight: (t) => t.load!, ...health });
    ts[0]!.load = 3;
    ts[1]!.load = 2; // 2 / weight 2 = 1
    ts[2]!.load = 2;
    expect(pick()!.n).toBe("b");
    ts[1]!.load = 10;
    expect(pick()!.n).toBe("c");
    for (const t of ts) t.load = 0;
    expect(new Set([pick()!.n, pick()!.n, pick()!.n])).toEqual(new Set(["a", "b", "c"]));
  });
});

describe("PowerOfTwoRandomChoices", () => {
  test("of two distinct draws the less loaded wins: a loaded target gets few calls", () => {
    const ts: T[] = [
      { n: "busy", weight: 1, load: 50 },
      { n: "x", weight: 1, load: 0 },
      { n: "y", weight: 1, load: 0 },
    ];
    const pick = createBalancer(ts, { type: "PowerOfTwoRandomChoices", inFlight: (t) => t.load!, random: seeded(3) });
    const c = counts(() => pick(), 3000);
    // "busy" only wins when both draws are "busy", which distinct draws never are.
    expect(c.busy ?? 0).toBe(0);
    expect(c.x! + c.y!).toBe(3000);
    expect(Math.abs(c.x! - c.y!)).toBeLessThan(300);
  });
});

describe("hash types (rendezvous)", () => {
  test("IpAddressHash keeps a client on its target; clients spread by weight", () => {
    const pick = createBalancer(three(), { type: "IpAddressHash", identity: (t) => t.n, ...health });
    const first = new Map<string, string>();
    for (let i = 0; i < 4000; i++) first.set(`10.0.${i >> 8}.${i & 255}`, pick(ctx(`10.0.${i >> 8}.${i & 255}`))!.n);
    for (const [ip, n] of first) expect(pick(ctx(ip))!.n).toBe(n);
    const c: Record<string, number> = {};
    for (const n of first.values()) c[n] = (c[n] ?? 0) + 1;
    expect(Math.abs(c.b! / 4000 - 0.5)).toBeLessThan(0.05);
    expect(Math.abs(c.a! / 4000 - 0.25)).toBeLessThan(0.05);
  });

  test("a target going down moves only the values that were on it; coming back restores them", () => {
    const ts = three();
    const pick = createBalancer(ts, { type: "HeaderHash", headerName: "x-user", identity: (t) => t.n, ...health });
    const before = new Map<string, string>();
    for (let i = 0; i < 2000; i++) before.set(`u${i}`, pick(ctx("1.1.1.1", { "x-user": `u${i}` }))!.n);
    ts[0]!.up = false;
    for (const [u, n] of before) {
      const now = pick(ctx("1.1.1.1", { "x-user": u }))!.n;
      if (n !== "a") expect(now).toBe(n);
      else expect(now).not.toBe("a");
    }
    ts[0]!.up = true;
    for (const [u, n] of before) expect(pick(ctx("1.1.1.1", { "x-user": u }))!.n).toBe(n);
  });

  test("CookieHash reads the cookie; an absent value falls back to round robin", () => {
    const pick = createBalancer(three(), { type: "CookieHash", cookieName: "sid", identity: (t) => t.n, ...health });
    const n = pick(ctx("1.1.1.1", { cookie: "a=1; sid=abc" }))!.n;
    for (let i = 0; i < 20; i++) expect(pick(ctx(`9.9.9.${i}`, { cookie: "sid=abc" }))!.n).toBe(n);
    // No cookie: smooth weighted round robin, a b c b in weight order.
    expect(counts(() => pick(ctx("1.1.1.1")), 8)).toEqual({ a: 2, b: 4, c: 2 });
  });

  test("rendezvous is a pure function of (value, candidate set)", () => {
    const w = [1, 1, 1];
    const seeds = [11, 22, 33];
    expect(rendezvous("k", [0, 1, 2], w, seeds)).toBe(rendezvous("k", [0, 1, 2], w, seeds));
    const win = rendezvous("k", [0, 1, 2], w, seeds);
    const others = [0, 1, 2].filter((i) => i !== win);
    // Removing a loser never moves the value.
    expect(rendezvous("k", [win, others[0]!], w, seeds)).toBe(win);
  });
});

describe("health and backups", () => {
  test("unusable targets are skipped; none usable: null", () => {
    const ts = three();
    const pick = createBalancer(ts, { type: "RoundRobin", ...health });
    ts[1]!.up = false;
    expect(counts(() => pick(), 10)).toEqual({ a: 5, c: 5 });
    for (const t of ts) t.up = false;
    expect(pick()).toBeNull();
  });

  test("a backup is used only when every primary is unusable or already tried", () => {
    const ts: T[] = [
      { n: "p1", weight: 1, up: true },
      { n: "p2", weight: 1, up: true },
      { n: "bk", weight: 1, backup: true, up: true },
    ];
    const pick = createBalancer(ts, { ...health });
    expect(counts(() => pick(), 10)).toEqual({ p1: 5, p2: 5 });
    expect(pick(null, new Set([ts[0]!]))!.n).toBe("p2");
    expect(pick(null, new Set([ts[0]!, ts[1]!]))!.n).toBe("bk");
    ts[0]!.up = false;
    ts[1]!.up = false;
    expect(counts(() => pick(), 4)).toEqual({ bk: 4 });
    ts[1]!.up = true;
    expect(counts(() => pick(), 4)).toEqual({ p2: 4 });
  });

  test("when every usable target was tried, a tried one is picked again (a retry on the only target)", () => {
    const ts: T[] = [{ n: "only", weight: 1 }];
    const pick = createBalancer(ts, { ...health });
    expect(pick(null, new Set(ts))!.n).toBe("only");
  });

  test("the fast path (nothing suspect) gives the same sequence as the filtered path", () => {
    const a = createBalancer(three(), { usable: () => true, suspect: () => false });
    const b = createBalancer(three(), { usable: () => true, suspect: () => true });
    expect(Array.from({ length: 12 }, () => a()!.n)).toEqual(Array.from({ length: 12 }, () => b()!.n));
  });
});
