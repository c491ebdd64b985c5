// Target choice: smooth weighted round-robin, the algorithm nginx uses for upstream weights.
// Each pick adds every target's weight to its running score, takes the highest score (first one
// on ties, so the sequence is deterministic) and subtracts the total from the winner. Weights
// 3:1 give A A B A: the heavy target is interleaved, never sent a burst of 3 in a row.
// A target at its connection limit is skipped while another has room, as nginx skips a server
// at max_conns; when none has room the first choice is kept (its call queues there).

export interface TargetLike {
  weight: number;
}

/**
 * Returns a picker over `targets`. Targets with a weight <= 0 are never chosen; an empty list
 * or a list without any positive weight is a compile-time error (config validation should
 * have refused it first). `hasRoom` (optional) says whether a target can take a call now.
 */
export function createBalancer<T extends TargetLike>(targets: readonly T[], hasRoom?: (t: T) => boolean): () => T {
  const live = targets.filter((t) => Number.isFinite(t.weight) && t.weight > 0);
  if (live.length === 0) throw new RangeError("createBalancer: no target with a positive weight");
  if (live.length === 1) {
    const only = live[0]!;
    return () => only;
  }
  const n = live.length;
  const weights = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    weights[i] = live[i]!.weight;
    total += live[i]!.weight;
  }
  const scores = new Float64Array(n);
  const next = () => {
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
    return live[best]!;
  };
  if (hasRoom === undefined) return next;
  return () => {
    const first = next();
    if (hasRoom(first)) return first;
    for (let i = 0; i < n; i++) if (hasRoom(live[i]!)) return live[i]!;
    return first;
  };
}
