// The reload loop: builds a whole new snapshot beside the running one, then swaps one
// reference. A failure keeps the old snapshot and reports every problem where it is.
import { createHash } from "node:crypto";
import { ConfigError, formatProblem, type ConfigProblem } from "../errors.ts";
import { log } from "../log.ts";
import { compileParsed, parseFile, readConfigBytes, type LoadOptions } from "./load.ts";
import { sha256Hex } from "./parse.ts";
import type { ConfigStore } from "./store.ts";

export type ReloadOutcome = "applied" | "unchanged" | "rejected" | "superseded";

const tick = () => new Promise<void>((r) => setTimeout(r, 0));

/** Digest of the effective config (after ${…} substitution), to skip no-op reloads. */
export function configDigest(config: unknown): string {
  return createHash("sha256").update(JSON.stringify(config)).digest("hex");
}

export class Reloader {
  private readonly file: string;
  private readonly store: ConfigStore;
  private readonly opts: LoadOptions;
  private seq = 0;
  private generation: number;
  private digest: string;
  private onApplied: ((files: readonly string[]) => void) | null = null;

  constructor(file: string, store: ConfigStore, opts: LoadOptions, initialDigest: string) {
    this.file = file;
    this.store = store;
    this.opts = opts;
    this.generation = store.current().generation;
    this.digest = initialDigest;
  }

  /** Called after each applied reload with the files referenced by the new config. */
  setOnApplied(fn: (files: readonly string[]) => void): void {
    this.onApplied = fn;
  }

  /** force: reload even when nothing changed on disk (SIGHUP re-reads every referenced file). */
  async reload(trigger: string, force = false): Promise<ReloadOutcome> {
    const seq = ++this.seq;
    const started = performance.now();
    const current = this.store.current();
    try {
      const bytes = readConfigBytes(this.file);
      const mainFileTrigger = !current.files.some((f) => trigger.endsWith(f) || trigger.endsWith(f.split("/").pop()!));
      if (!force && mainFileTrigger && sha256Hex(bytes) === current.sha256) return "unchanged";
      await tick(); // let requests in flight progress between the phases of a big reload
      const parsed = parseFile(this.file, bytes, this.opts.env);
      const digest = configDigest(parsed.config);
      if (!force && digest === this.digest && parsed.sha256 === current.sha256) return "unchanged";
      const running = current.config.server;
      if (JSON.stringify(parsed.config.server) !== JSON.stringify(running)) {
        const changed = Object.keys({ ...running, ...parsed.config.server }).filter(
          (k) => JSON.stringify((running as Record<string, unknown>)[k]) !== JSON.stringify((parsed.config.server as Record<string, unknown>)[k]),
        );
        log("warn", "config.restart_required", { file: this.file, changed: changed.map((k) => `server.${k}`), message: "server settings apply at the next restart; the rest of the change is applied now" });
      }
      await tick();
      const snapshot = compileParsed(parsed, this.file, this.generation + 1, { ...this.opts, server: running });
      if (!this.store.swap(snapshot, seq)) return "superseded";
      this.generation = snapshot.generation;
      this.digest = digest;
      log("info", "config.reloaded", {
        generation: snapshot.generation,
        trigger,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        sha256: snapshot.sha256,
        routes: snapshot.counts.routes,
        apikeys: snapshot.counts.apikeys,
        keypairs: snapshot.counts.keypairs,
      });
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
