// Holds the current snapshot. Swapping is one reference assignment; a request reads the
// snapshot once and runs to completion on it.
//
// Reloads may overlap (a big config takes a while to compile and the watcher does not wait), so
// each attempt carries a sequence number taken when it started, and the store keeps the outcome
// that a one-at-a-time run would have had: a newer result is never replaced by an older one.
import type { ConfigProblem } from "../errors.ts";
import type { Snapshot } from "./compile.ts";

export interface LastError {
  at: string;
  problems: { line: number; column: number; path: string; message: string }[];
}

export class ConfigStore {
  private snapshot: Snapshot;
  /** Newest attempt whose result is the running snapshot (applied, or found identical to it). */
  private appliedSeq = 0;
  private lastErrorSeq = 0;
  private error: LastError | null = null;

  constructor(initial: Snapshot) {
    this.snapshot = initial;
  }

  current(): Snapshot {
    return this.snapshot;
  }

  get lastError(): LastError | null {
    return this.error;
  }

  /**
   * Applies a snapshot unless an attempt that started later already decided what runs. An
   * older valid attempt still applies after a newer rejected one (saved in that order, the
   * valid one is the previous good config), but the newer error stays reported.
   */
  swap(next: Snapshot, seq: number): boolean {
    if (seq < this.appliedSeq) return false;
    this.snapshot = next;
    this.appliedSeq = seq;
    if (seq > this.lastErrorSeq) this.error = null;
    return true;
  }

  /** Attempt seq found the file identical to the running snapshot: it is what runs now. */
  keep(seq: number): void {
    if (seq < this.appliedSeq) return;
    this.appliedSeq = seq;
    if (seq > this.lastErrorSeq) this.error = null;
  }

  reject(problems: readonly ConfigProblem[], seq: number, at: string): void {
    if (seq < this.appliedSeq || seq < this.lastErrorSeq) return;
    this.lastErrorSeq = seq;
    this.error = { at, problems: problems.map(({ line, column, path, message }) => ({ line, column, path, message })) };
  }

  status(): Record<string, unknown> {
    const s = this.snapshot;
    return { generation: s.generation, sha256: s.sha256, loadedAt: s.loadedAt, file: s.file, counts: s.counts, lastError: this.error };
  }
}
