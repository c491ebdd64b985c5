// The reload loop: builds a whole new snapshot beside the running one, then swaps one
// reference. A failure keeps the old snapshot and reports every problem where it is.
//
// The parse (YAML with positions, substitution, validation, references: ~0.7 s at 1,000 routes
// and 10,000 API keys) runs in a worker thread (parse-worker.ts) and never on this one: this
// thread reads the file (at most the running server.maxConfigSize), then compiles what the
// worker validated, yielding to requests in between. No worker answer: the reload is refused.
import { metrics } from "../monitoring/metrics.ts";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError, type ConfigProblem, formatProblem } from "../errors.ts";
import { log } from "../log.ts";
import type { Snapshot } from "./compile.ts";
import { compileParsedYielding, type LoadOptions, readConfigBytes, tick } from "./load.ts";
import { type ParsedConfig, type Path, sha256Hex } from "./parse.ts";
import { ParseWorker, WorkerFailure } from "./parse-worker.ts";
import type { ParseReply } from "./reload-worker.ts";
import type { ConfigStore } from "./store.ts";

export { setWorkerFactory, type WorkerFactory } from "./parse-worker.ts";

export type ReloadOutcome = "applied" | "unchanged" | "rejected" | "superseded";

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
  /** configDigest of the effective config: the worker's, or computed here only when needed (~15 ms at 10,000 keys). */
  digest: () => string;
  /** filesDigest of snapshot.files taken before they were read for it; null: unknown. */
  files: string | null;
}

const parseWorker = new ParseWorker();

/** Problems logged and kept in the status endpoint per rejected reload; `check` prints them all. */
export const MAX_REPORTED_PROBLEMS = 100;

/** The ParsedConfig of a worker's answer (throws its ConfigError as parseFile would). */
function fromReply(reply: ParseReply, file: string): { parsed: ParsedConfig; digest: string } {
  if (!reply.ok) {
    if ("problems" in reply) throw new ConfigError(reply.problems);
    // The error's own text may quote the file: it stays out of the problem (`check` shows it).
    log("error", "config.parse_crashed", { file, errorName: reply.unexpected });
    throw new ConfigError([{ file, line: 1, column: 1, path: "", message: "the reload was not applied: unexpected error while parsing (run `otoroshi-lite check` on the file)" }]);
  }
  const positions = reply.positions;
  // Compile may locate a problem elsewhere than where the worker looked ahead: then the
  // nearest path it did locate (never a second parse on this thread).
  const locate = (path: Path) => {
    for (let n = path.length; n >= 0; n--) {
      const known = positions[JSON.stringify(path.slice(0, n))];
      if (known) return known;
    }
    return { line: 1, column: 1 };
  };
  const parsed: ParsedConfig = { config: JSON.parse(reply.json) as ParsedConfig["config"], sha256: reply.sha256, files: reply.files, warnings: reply.warnings, locate };
  return { parsed, digest: reply.digest };
}

// ---------------------------------------------------------------- the reloader

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

  private readonly worker: ParseWorker;

  /** worker: the parse thread; default: the one of the process (tests give their own). */
  constructor(file: string, store: ConfigStore, opts: LoadOptions, initialDigest: string, worker: ParseWorker = parseWorker) {
    this.worker = worker;
    this.file = file;
    this.store = store;
    this.opts = opts;
    const current = store.current();
    this.generation = current.generation;
    // The referenced files may have changed since the initial load read them: unknown, so the
    // first reload parses them again rather than trust a digest taken now.
    this.sources.set(current, { digest: () => initialDigest, files: current.files.length ? null : filesDigest([]) });
    this.worker.start();
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
      // The running limit: a file written over the config is refused before it is read whole.
      const maxConfigSize = current.config.server.maxConfigSize;
      const bytes = readConfigBytes(this.file, maxConfigSize);
      const sameBytes = !force && sha256Hex(bytes) === current.sha256;
      if (sameBytes && files !== null && files === source?.files) {
        this.store.keep(seq);
        log("debug", "config.unchanged", { trigger });
        return "unchanged";
      }
      const { parsed, digest } = await this.parse(bytes, maxConfigSize);
      // Same bytes but a referenced file may differ: compare what the substitution produced.
      // (Still the running snapshot? Another Reloader on the same store may have swapped.)
      if (sameBytes && source && this.store.current() === current && digest() === source.digest()) {
        this.store.keep(seq);
        log("debug", "config.unchanged", { trigger });
        return "unchanged";
      }
      const running = current.config.server;
      await tick();
      const snapshot = await compileParsedYielding(parsed, this.file, this.generation + 1, { ...this.opts, server: running });
      if (!this.store.swap(snapshot, seq)) return "superseded";
      metrics.reloaded(true);
      this.generation = Math.max(this.generation, snapshot.generation);
      this.sources.set(snapshot, { digest, files: sameFiles(parsed.files, current.files) ? files : null });
      log("info", "config.reloaded", {
        generation: snapshot.generation,
        trigger,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        parser: "worker",
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
      const problems: ConfigProblem[] = e instanceof ConfigError ? e.problems : [{ file: this.file, line: 1, column: 1, path: "", message: `unexpected error: ${(e as Error).message}` }];
      const reported = problems.length > MAX_REPORTED_PROBLEMS ? [...problems.slice(0, MAX_REPORTED_PROBLEMS), moreProblems(this.file, problems.length - MAX_REPORTED_PROBLEMS)] : problems;
      this.store.reject(reported, seq, new Date(this.opts.clock()).toISOString());
      metrics.reloaded(false);
      for (const p of reported) {
        log("error", "config.rejected", { trigger, location: formatProblem(p), file: p.file, line: p.line, column: p.column, path: p.path, message: p.message, generation: current.generation });
      }
      return "rejected";
    }
  }

  /** Parses in the worker; never on this thread (see parse-worker.ts). */
  private async parse(bytes: Uint8Array, maxConfigSize: number): Promise<{ parsed: ParsedConfig; digest: () => string }> {
    try {
      // A copy: the worker gets exactly these bytes (a Buffer may view a larger pooled buffer),
      // and an env of plain strings (process.env is not cloneable everywhere).
      const reply = await this.worker.parse({ file: this.file, bytes: new Uint8Array(bytes), env: { ...this.opts.env }, maxConfigSize });
      const { parsed, digest } = fromReply(reply, this.file);
      return { parsed, digest: () => digest };
    } catch (e) {
      if (!(e instanceof WorkerFailure)) throw e;
      throw new ConfigError([
        { file: this.file, line: 1, column: 1, path: "", message: `the reload was not applied: the reload worker ${e.message}; the running config is kept, and the next reload uses a new worker` },
      ]);
    }
  }
}

function moreProblems(file: string, n: number): ConfigProblem {
  return { file, line: 1, column: 1, path: "", message: `… and ${n} more problem${n === 1 ? "" : "s"} (\`otoroshi-lite check\` lists them all)` };
}

/** `server.<key>` for each top-level server setting the file changed (they apply at restart). */
function changedServerKeys(running: object, next: object): string[] {
  const a = running as Record<string, unknown>;
  const b = next as Record<string, unknown>;
  return Object.keys({ ...a, ...b })
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => `server.${k}`);
}
