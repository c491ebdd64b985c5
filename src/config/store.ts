// Holds the current snapshot. Swapping is one reference assignment; a request reads the
// snapshot once and runs to completion on it.
import type { ConfigProblem } from "../errors.ts";
import type { Snapshot } from "./compile.ts";

export interface LastError {
  at: string;
  problems: { line: number; column: number; path: string; message: string }[];
}

export class ConfigStore {
  private snapshot: Snapshot;
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

  /** Applies a snapshot unless a reload that started later already applied or failed. */
  swap(next: Snapshot, seq: number): boolean {
    if (seq < this.appliedSeq || seq < this.lastErrorSeq) return false;
    this.snapshot = next;
    this.appliedSeq = seq;
    this.error = null;
    return true;
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
