// The reload loop: builds a whole new snapshot beside the running one, then swaps one
// reference. A failure keeps the old snapshot and reports every problem where it is.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError, formatProblem, type ConfigProblem } from "../errors.ts";
import { log } from "../log.ts";
import type { Snapshot } from "./compile.ts";
import { compileParsed, parseFile, readConfigBytes, type LoadOptions } from "./load.ts";
import { sha256Hex } from "./parse.ts";
import type { ConfigStore } from "./store.ts";

export type ReloadOutcome = "applied" | "unchanged" | "rejected" | "superseded";

const tick = () => new Promise<void>((r) => setTimeout(r, 0));

/** Digest of the effective config (after ${…} substitution), to skip no-op reloads. */
export function configDigest(config: unknown): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex");
}

/** Digest of the referenced files' bytes; null when one cannot be read (the parse will say why). */
function filesDigest(files: readonly string[]): string | null {
  const h = createHash("sha256");
  try {
    for (const f of files) h.update(f).update("\0").update(readFileSync(f)).update("\0");
  } catch {
    return null;
  }
  return h.digest("hex");
}

const sameFiles = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((f, i) => f === b[i]);

/** What a snapshot was built from, beyond the main file's sha256 the snapshot carries. */
interface Source {
  /** configDigest of the effective config; computed only when needed (~15 ms at 10,000 keys). */
  digest: () => string;
  /** filesDigest of snapshot.files taken before they were read for it; null: unknown. */
  files: string | null;
}

function lazyDigest(config: unknown): () => string {
  let d: string | null = null;
  return () => (d ??= configDigest(config));
}

interface Queued {
  trigger: string;
  force: boolean;
  promise: Promise<ReloadOutcome>;
  resolve: (p: Promise<ReloadOutcome>) => void;
}

export class Reloader {
  private readonly file: string;
  private readonly store: ConfigStore;
  private readonly opts: LoadOptions;
  private seq = 0;
  private generation: number;
  private readonly sources = new WeakMap<Snapshot, Source>();
  private onApplied: ((files: readonly string[]) => void) | null = null;
  private busy = false;
  private queued: Queued | null = null;

  constructor(file: string, store: ConfigStore, opts: LoadOptions, initialDigest: string) {
    this.file = file;
    this.store = store;
    this.opts = opts;
    const current = store.current();
    this.generation = current.generation;
    // The referenced files may have changed since the initial load read them: unknown, so the
    // first reload parses them again rather than trust a digest taken now.
    this.sources.set(current, { digest: () => initialDigest, files: current.files.length ? null : filesDigest([]) });
  }

  /** Called after each applied reload with the files referenced by the new config. */
  setOnApplied(fn: (files: readonly string[]) => void): void {
    this.onApplied = fn;
  }

  /**
   * force: reload even when nothing changed on disk (SIGHUP re-reads every referenced file).
   *
   * One reload runs at a time. Calls that arrive meanwhile share ONE more reload, which starts
   * when the running one ends and reads the files then: a burst of saves during a long reload
   * costs one extra reload, not one each, and never more than one compile competes with the
   * traffic. A forced call in the burst makes the shared reload forced (and names its trigger).
   */
  reload(trigger: string, force = false): Promise<ReloadOutcome> {
    const q = this.queued;
    if (q) {
      if (force && !q.force) {
        q.force = true;
        q.trigger = trigger;
      }
      return q.promise;
    }
    if (!this.busy) return this.start(trigger, force);
    let resolve!: Queued["resolve"];
    const promise = new Promise<ReloadOutcome>((r) => (resolve = r));
    this.queued = { trigger, force, promise, resolve };
    return promise;
  }

  private start(trigger: string, force: boolean): Promise<ReloadOutcome> {
    this.busy = true;
    const run = this.run(trigger, force);
    const next = () => {
      this.busy = false;
      const q = this.queued;
      if (q) {
        this.queued = null;
        q.resolve(this.start(q.trigger, q.force));
      }
    };
    run.then(next, next);
    return run;
  }

  private async run(trigger: string, force: boolean): Promise<ReloadOutcome> {
    const seq = ++this.seq;
    const started = performance.now();
    const current = this.store.current();
    const source = this.sources.get(current);
    try {
      // The referenced files are hashed BEFORE the parse reads them: a write racing with the
      // parse then costs one more reload, never a missed one. Whatever the trigger names, both
      // the main file and every referenced file are checked (a Kubernetes ConfigMap swap changes
      // them together and the watcher reports only the first).
      const files = filesDigest(current.files);
      const bytes = readConfigBytes(this.file);
      const sameBytes = !force && sha256Hex(bytes) === current.sha256;
      if (sameBytes && files !== null && files === source?.files) {
        this.store.keep(seq);
        return "unchanged";
      }
      await tick(); // let requests in flight progress between the phases of a big reload
      const parsed = parseFile(this.file, bytes, this.opts.env);
      const digest = lazyDigest(parsed.config);
      // Same bytes but a referenced file may differ: compare what the substitution produced.
      // (Still the running snapshot? Another Reloader on the same store may have swapped.)
      if (sameBytes && source && this.store.current() === current && digest() === source.digest()) {
        this.store.keep(seq);
        return "unchanged";
      }
      const running = current.config.server;
      await tick();
      const snapshot = compileParsed(parsed, this.file, this.generation + 1, { ...this.opts, server: running });
      if (!this.store.swap(snapshot, seq)) return "superseded";
      this.generation = Math.max(this.generation, snapshot.generation);
      this.sources.set(snapshot, { digest, files: sameFiles(parsed.files, current.files) ? files : null });
      log("info", "config.reloaded", {
        generation: snapshot.generation,
        trigger,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        sha256: snapshot.sha256,
        routes: snapshot.counts.routes,
        apikeys: snapshot.counts.apikeys,
        keypairs: snapshot.counts.keypairs,
      });
      const changed = changedServerKeys(running, parsed.config.server);
      if (changed.length) {
        log("warn", "config.restart_required", { file: this.file, changed, message: "server settings apply at the next restart; the rest of the change is applied now" });
      }
      for (const w of parsed.warnings) log("warn", "config.warning", { location: formatProblem(w) });
      this.onApplied?.(snapshot.files);
      return "applied";
    } catch (e) {
      const problems: ConfigProblem[] =
        e instanceof ConfigError ? e.problems : [{ file: this.file, line: 1, column: 1, path: "", message: `unexpected error: ${(e as Error).message}` }];
      this.store.reject(problems, seq, new Date(this.opts.clock()).toISOString());
      for (const p of problems) {
        log("error", "config.rejected", { trigger, location: formatProblem(p), file: p.file, line: p.line, column: p.column, path: p.path, message: p.message, generation: current.generation });
      }
      return "rejected";
    }
  }
}

/** `server.<key>` for each top-level server setting the file changed (they apply at restart). */
function changedServerKeys(running: object, next: object): string[] {
  const a = running as Record<string, unknown>;
  const b = next as Record<string, unknown>;
  return Object.keys({ ...a, ...b })
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => `server.${k}`);
}
