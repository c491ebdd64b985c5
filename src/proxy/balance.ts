// Target choice, with Otoroshi's load-balancing types (backend.loadBalancing.type).
//
// RoundRobin is smooth weighted round-robin, the algorithm nginx uses for upstream weights:
// each pick adds every candidate's weight to its running score, takes the highest score (first
// on ties, so the sequence is deterministic) and subtracts the candidates' total from the
// winner. Weights 3:1 give A A B A: the heavy target is interleaved, never sent a burst.
// A target at its connection limit is skipped while another has room, as nginx skips a server
// at max_conns; when none has room the first choice is kept (its call queues there).
//
// The hash types use rendezvous (highest random weight) hashing over the candidates, weighted
// as in Schindelhauer & Schomaker's "weighted distributed hash tables": score = w / -ln(u) with u
// a hash of (value, target) in (0,1). A value stays on its target while the candidate set is
// unchanged, and a target leaving the set only moves the values that were on it.
//
// Candidates: the usable (healthy, breaker not open) non-backup targets not yet tried by this
// request; else the usable backups not yet tried; else the same with tried ones allowed (a
// retry when nothing else is left). None: null, and the caller answers 503.

export type BalancingType = "RoundRobin" | "Random" | "LeastConnections" | "PowerOfTwoRandomChoices" | "IpAddressHash" | "HeaderHash" | "CookieHash";

export interface TargetLike {
  weight: number;
  backup?: boolean;
}

/** What a hash type reads from the request (RequestContext has it). */
export interface PickContext {
  readonly clientIp: string;
  readonly req: { readonly headers: Headers };
  cookies(): Map<string, string>;
}

export interface BalancerOptions<T> {
  type?: BalancingType;
  headerName?: string;
  cookieName?: string;
  /** A call now would not wait for a free connection. */
  hasRoom?: (t: T) => boolean;
  /** Calls of this target in flight (LeastConnections, PowerOfTwoRandomChoices). */
  inFlight?: (t: T) => number;
  /** The target may be called now (health and breaker). Absent: every target may. */
  usable?: (t: T) => boolean;
  /** false while no target can be unusable: the pick skips the health filter (fast path). */
  suspect?: () => boolean;
  /** Stable identity of a target for the hash types (default: its position). */
  identity?: (t: T, i: number) => string;
  random?: () => number;
}

/** Picks a target, or null when no target may be called. `tried`: targets this request already failed on. */
export type Picker<T> = (ctx?: PickContext | null, tried?: ReadonlySet<T> | null) => T | null;

/** 32-bit FNV-1a of a string's UTF-16 code units. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finaliser: every input bit affects every output bit. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Weighted rendezvous hashing: the index (in `cands`) of the winner for `key`.
 * `seeds[i]` is the hash of target i's identity.
 */
export function rendezvous(key: string, cands: readonly number[], weights: ArrayLike<number>, seeds: ArrayLike<number>): number {
  const h = fnv1a(key);
  let best = cands[0]!;
  let bestScore = -Infinity;
  for (const i of cands) {
    const u = (mix32(h ^ mix32(seeds[i]!)) + 0.5) / 4294967296;
    const score = weights[i]! / -Math.log(u);
    if (score > bestScore) {
      bestScore = score;
      best = i;
    }
  }
  return best;
}

/**
 * Returns a picker over `targets`. Targets with a weight <= 0 are never chosen; a list without
 * any positive weight is a compile-time error (config validation refuses it first).
 */
export function createBalancer<T extends TargetLike>(targets: readonly T[], hasRoom?: (t: T) => boolean): (ctx?: PickContext | null, tried?: ReadonlySet<T> | null) => T;
export function createBalancer<T extends TargetLike>(targets: readonly T[], opts: BalancerOptions<T>): Picker<T>;
export function createBalancer<T extends TargetLike>(targets: readonly T[], arg?: BalancerOptions<T> | ((t: T) => boolean)): Picker<T> {
  // Without `usable` every target may be called: the picker never returns null.
  const opts: BalancerOptions<T> = typeof arg === "function" ? { hasRoom: arg } : (arg ?? {});
  const live = targets.filter((t) => Number.isFinite(t.weight) && t.weight > 0);
  if (live.length === 0) throw new RangeError("createBalancer: no target with a positive weight");
  const n = live.length;
  const type = opts.type ?? "RoundRobin";
  const random = opts.random ?? Math.random;
  const { hasRoom, usable, suspect } = opts;
  const inFlight = opts.inFlight ?? (() => 0);
  const weights = new Float64Array(n);
  const seeds = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    weights[i] = live[i]!.weight;
    seeds[i] = fnv1a(opts.identity ? opts.identity(live[i]!, i) : String(i));
  }
  const primaries = live.map((_, i) => i).filter((i) => live[i]!.backup !== true);
  const backups = live.map((_, i) => i).filter((i) => live[i]!.backup === true);
  const scores = new Float64Array(n);
  let cursor = 0;

  const roundRobin = (cands: readonly number[]): number => {
    let best = cands[0]!;
    let bestScore = -Infinity;
    let total = 0;
    for (const i of cands) {
      const s = scores[i]! + weights[i]!;
      scores[i] = s;
      total += weights[i]!;
      if (s > bestScore) {
        bestScore = s;
        best = i;
      }
    }
    scores[best] = bestScore - total;
    return best;
  };
  const weightedRandom = (cands: readonly number[], skip = -1): number => {
    let total = 0;
    for (const i of cands) if (i !== skip) total += weights[i]!;
    let r = random() * total;
    let last = cands[0]!;
    for (const i of cands) {
      if (i === skip) continue;
      last = i;
      r -= weights[i]!;
      if (r < 0) return i;
    }
    return last;
  };
  // Fewest calls in flight relative to weight; ties go round the candidates so idle targets share.
  const leastConnections = (cands: readonly number[]): number => {
    const m = cands.length;
    const start = cursor++ % m;
    let best = cands[start]!;
    let bestLoad = inFlight(live[best]!) / weights[best]!;
    for (let k = 1; k < m; k++) {
      const i = cands[(start + k) % m]!;
      const load = inFlight(live[i]!) / weights[i]!;
      if (load < bestLoad) {
        bestLoad = load;
        best = i;
      }
    }
    return best;
  };
  // Mitzenmacher's power of two choices: two distinct weighted draws, the less loaded wins.
  const twoChoices = (cands: readonly number[]): number => {
    if (cands.length === 1) return cands[0]!;
    const a = weightedRandom(cands);
    const b = weightedRandom(cands, a);
    return inFlight(live[b]!) / weights[b]! < inFlight(live[a]!) / weights[a]! ? b : a;
  };
  const hashKey = (ctx: PickContext | null | undefined): string | null => {
    if (!ctx) return null;
    if (type === "IpAddressHash") return ctx.clientIp || null;
    if (type === "HeaderHash") return ctx.req.headers.get(opts.headerName!) || null;
    return ctx.cookies().get(opts.cookieName!) || null;
  };
  const withRoom = (best: number, cands: readonly number[]): number => {
    if (hasRoom === undefined || hasRoom(live[best]!)) return best;
    for (const i of cands) if (hasRoom(live[i]!)) return i;
    return best;
  };
  const choose = (cands: readonly number[], ctx: PickContext | null | undefined): number => {
    if (cands.length === 1) return cands[0]!;
    switch (type) {
      case "RoundRobin":
        return withRoom(roundRobin(cands), cands);
      case "Random":
        return withRoom(weightedRandom(cands), cands);
      case "LeastConnections":
        return leastConnections(cands);
      case "PowerOfTwoRandomChoices":
        return twoChoices(cands);
      default: {
        const key = hashKey(ctx);
        return key === null ? withRoom(roundRobin(cands), cands) : rendezvous(key, cands, weights, seeds);
      }
    }
  };
  const candidates = (tried: ReadonlySet<T> | null | undefined): number[] => {
    for (const allowTried of [false, true]) {
      for (const group of [primaries, backups]) {
        const c = group.filter((i) => (usable === undefined || usable(live[i]!)) && (allowTried || !tried?.has(live[i]!)));
        if (c.length !== 0) return c;
      }
      if (!tried || tried.size === 0) break;
    }
    return [];
  };

  const slow: Picker<T> = (ctx, tried) => {
    const cands = candidates(tried);
    return cands.length === 0 ? null : live[choose(cands, ctx)]!;
  };
  // The fast path: no backup, nothing tried yet, no target out. RoundRobin then costs what it
  // did before health existed: one pass over typed arrays (bench: ~4 ns a pick on Bun).
  if (backups.length !== 0) return slow;
  let total = 0;
  for (let i = 0; i < n; i++) total += weights[i]!;
  const all = primaries;
  const roundRobinAll = (): T => {
    let best = 0;
    let bestScore = -Infinity;
    for (let i = 0; i < n; i++) {
      const s = scores[i]! + weights[i]!;
      scores[i] = s;
      if (s > bestScore) {
        bestScore = s;
        best = i;
      }
    }
    scores[best] = bestScore - total;
    if (hasRoom === undefined || hasRoom(live[best]!)) return live[best]!;
    for (let i = 0; i < n; i++) if (hasRoom(live[i]!)) return live[i]!;
    return live[best]!;
  };
  const pickAll = n === 1 ? () => live[0]! : type === "RoundRobin" ? roundRobinAll : (ctx: PickContext | null | undefined) => live[choose(all, ctx)]!;
  return (ctx, tried) => ((tried === undefined || tried === null || tried.size === 0) && (suspect === undefined || !suspect()) ? pickAll(ctx) : slow(ctx, tried));
}
