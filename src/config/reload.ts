// The reload loop: builds a whole new snapshot beside the running one, then swaps one
// reference. A failure keeps the old snapshot and reports every problem where it is.
//
// The parse (YAML with positions, substitution, validation, references: ~0.7 s at 1,000 routes
// and 10,000 API keys) runs in a worker thread, started with the Reloader and reused; this thread
// reads the file, then compiles what the worker validated, yielding to requests in between.
// Without a worker (it cannot start, or it failed) the parse runs here, as it always did.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError, formatProblem, type ConfigProblem } from "../errors.ts";
import { log } from "../log.ts";
import type { Snapshot } from "./compile.ts";
import { compileParsedYielding, parseFile, readConfigBytes, tick, type LoadOptions } from "./load.ts";
import { parseConfig, sha256Hex, type ParsedConfig, type Path } from "./parse.ts";
import type { ParseReply, ParseRequest, ReadyMessage } from "./reload-worker.ts";
import type { ConfigStore } from "./store.ts";

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

function lazyDigest(config: unknown): () => string {
  let d: string | null = null;
  return () => (d ??= configDigest(config));
}

// ---------------------------------------------------------------- the parse worker

/** Starts a worker running a module named by its path under src/ (Runtime.createWorker). */
export type WorkerFactory = (entry: string) => Worker;

const WORKER_ENTRY = "config/reload-worker.ts";
/** A parse that takes longer than this is given up and done on this thread instead. */
const WORKER_TIMEOUT_MS = 60_000;
/** After this many failures of a worker that had been up (crashed, timed out) reloads stop trying one. */
const WORKER_MAX_FAILURES = 3;

// From the sources (Bun, Deno, tests), the module next to this one. The runtime adapters replace
// it: a compiled binary embeds the worker elsewhere.
let workerFactory: WorkerFactory = (entry) => new Worker(new URL(`../${entry}`, import.meta.url).href, { type: "module" });

/** Set by the runtime adapter (src/runtime/*): how this program starts its workers. */
export function setWorkerFactory(factory: WorkerFactory): void {
  workerFactory = factory;
}

class WorkerFailure extends Error {}

interface Pending {
  resolve: (reply: ParseReply) => void;
  reject: (error: WorkerFailure) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** One worker thread for the process, started with the first Reloader and reused by every reload. */
class ParseWorker {
  private worker: Worker | null = null;
  /** The running worker has loaded its modules (it said so). */
  private up = false;
  private failures = 0;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();

  /** Starts the thread if it is not running (its modules then load while no reload waits). */
  start(): Worker | null {
    if (this.worker || this.failures >= WORKER_MAX_FAILURES) return this.worker;
    let w: Worker;
    try {
      w = workerFactory(WORKER_ENTRY);
    } catch (e) {
      this.failed(null, `cannot start: ${(e as Error).message}`);
      return null;
    }
    w.onmessage = (e: MessageEvent<ParseReply | ReadyMessage>) => {
      if ("ready" in e.data) {
        if (this.worker === w) this.up = true;
        return;
      }
      const p = this.pending.get(e.data.id);
      if (!p) return;
      this.pending.delete(e.data.id);
      clearTimeout(p.timer);
      p.resolve(e.data);
    };
    w.onerror = (e: ErrorEvent) => {
      e.preventDefault?.(); // handled here: not an uncaught error of this thread
      this.failed(w, e.message || "error");
    };
    w.onmessageerror = () => this.failed(w, "a message could not be read");
    // An idle worker must not keep the process alive (Bun; Deno's Web Worker has no unref).
    (w as Worker & { unref?: () => void }).unref?.();
    this.worker = w;
    return w;
  }

  /**
   * The worker's answer; rejects with WorkerFailure when there is no worker that is up. A
   * reload does not wait for a worker still loading (~60–110 ms after it started): it parses on
   * its own thread, as it would have without a worker, rather than see files later than it would have.
   */
  parse(req: Omit<ParseRequest, "id">): Promise<ParseReply> {
    const w = this.start();
    if (!w || !this.up) return Promise.reject(new WorkerFailure("no worker"));
    const id = ++this.nextId;
    return new Promise<ParseReply>((resolve, reject) => {
      // Not unref'd: a parse under way keeps the process alive until it ends, as on this thread.
      const timer = setTimeout(() => this.failed(w, `no answer within ${WORKER_TIMEOUT_MS / 1000} s`), WORKER_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      try {
        w.postMessage({ ...req, id } satisfies ParseRequest);
      } catch (e) {
        this.failed(w, `cannot post: ${(e as Error).message}`);
      }
    });
  }

  private failed(w: Worker | null, message: string): void {
    if (w !== null && w !== this.worker) return; // an earlier worker, already given up
    // One that never came up cannot load its code (e.g. a binary built without it): no retry.
    this.failures = this.up ? this.failures + 1 : WORKER_MAX_FAILURES;
    this.worker = null;
    this.up = false;
    try {
      w?.terminate();
    } catch {}
    const error = new WorkerFailure(message);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(error);
    }
    this.pending.clear();
    log("warn", "config.worker_failed", {
      message: `reload worker: ${message}`,
      fallback: this.failures >= WORKER_MAX_FAILURES ? "reloads parse on the main thread from now on" : "this reload parses on the main thread; the next one starts a new worker",
    });
  }
}

const parseWorker = new ParseWorker();

/** The ParsedConfig of a worker's answer (throws its ConfigError as parseFile would). */
function fromReply(reply: ParseReply, file: string, bytes: Uint8Array, env: LoadOptions["env"]): { parsed: ParsedConfig; digest: string } {
  if (!reply.ok) {
    if ("problems" in reply) throw new ConfigError(reply.problems);
    throw new Error(reply.unexpected);
  }
  const positions = reply.positions;
  // Compile may locate a problem elsewhere than where the worker looked ahead (not today):
  // then the same bytes are parsed again here, once, for their positions.
  let slow: ((path: Path) => { line: number; column: number }) | null = null;
  const locate = (path: Path) => {
    const known = positions[JSON.stringify(path)];
    if (known) return known;
    if (!slow) {
      try {
        slow = parseConfig(bytes, file, { env }).locate;
      } catch {
        slow = () => ({ line: 1, column: 1 });
      }
    }
    return slow(path);
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

  constructor(file: string, store: ConfigStore, opts: LoadOptions, initialDigest: string) {
    this.file = file;
    this.store = store;
    this.opts = opts;
    const current = store.current();
    this.generation = current.generation;
    // The referenced files may have changed since the initial load read them: unknown, so the
    // first reload parses them again rather than trust a digest taken now.
    this.sources.set(current, { digest: () => initialDigest, files: current.files.length ? null : filesDigest([]) });
    parseWorker.start();
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
      const { parsed, digest, parser } = await this.parse(bytes);
      // Same bytes but a referenced file may differ: compare what the substitution produced.
      // (Still the running snapshot? Another Reloader on the same store may have swapped.)
      if (sameBytes && source && this.store.current() === current && digest() === source.digest()) {
        this.store.keep(seq);
        return "unchanged";
      }
      const running = current.config.server;
      await tick();
      const snapshot = await compileParsedYielding(parsed, this.file, this.generation + 1, { ...this.opts, server: running });
      if (!this.store.swap(snapshot, seq)) return "superseded";
      this.generation = Math.max(this.generation, snapshot.generation);
      this.sources.set(snapshot, { digest, files: sameFiles(parsed.files, current.files) ? files : null });
      log("info", "config.reloaded", {
        generation: snapshot.generation,
        trigger,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        parser,
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

  /** Parses in the worker; on this thread when there is none (or it failed: never a reason to reject). */
  private async parse(bytes: Uint8Array): Promise<{ parsed: ParsedConfig; digest: () => string; parser: "worker" | "main" }> {
    const env = this.opts.env;
    try {
      // A copy: the worker gets exactly these bytes (a Buffer may view a larger pooled buffer),
      // and an env of plain strings (process.env is not cloneable everywhere).
      const reply = await parseWorker.parse({ file: this.file, bytes: new Uint8Array(bytes), env: { ...env } });
      const { parsed, digest } = fromReply(reply, this.file, bytes, env);
      return { parsed, digest: () => digest, parser: "worker" };
    } catch (e) {
      if (!(e instanceof WorkerFailure)) throw e;
    }
    await tick(); // let requests in flight progress between the phases of a big reload
    const parsed = parseFile(this.file, bytes, env);
    return { parsed, digest: lazyDigest(parsed.config), parser: "main" };
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
