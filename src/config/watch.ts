// Notices changes to the config file and the files it references. Runtime-neutral (node:fs
// and node:timers only), so both runtimes run this same file.
//
// Editors save by writing a temporary file and renaming it over the original, `mv` replaces
// the inode, and Kubernetes swaps a `..data` symlink to a new directory: a watch on the file's
// inode misses all three. So we watch the DIRECTORIES (the one holding the path as given and
// the one holding its resolved target), and also poll a stat signature, which catches what
// fs.watch misses (network filesystems, a watcher that died, a directory created later).
// Spurious triggers are cheap: the reload pipeline hashes the content and skips no-ops.

import { type FSWatcher, realpathSync, statSync, watch } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { clearInterval, clearTimeout, setInterval, setTimeout } from "node:timers";
import { log } from "../log.ts";

export interface WatchOptions {
  /** The config path as given (may be a symlink, e.g. Kubernetes `..data/otoroshi.yaml`). */
  file: string;
  /** Events closer together than this make one callback. Default 100. */
  debounceMs?: number;
  /** Period of the stat check that catches what fs.watch misses. Default 2000. */
  pollIntervalMs?: number;
  /** Rely on the poll alone (tests; filesystems where fs.watch is unreliable). */
  disableFsWatch?: boolean;
  /** trigger: "watch:<file name>" or "poll:<file name>". */
  onChange: (trigger: string) => void;
}

export interface ConfigWatcher {
  /** Files referenced by ${file:...}; watched too. Relative paths resolve against the cwd. */
  setExtraFiles(files: readonly string[]): void;
  close(): void;
}

const MISSING = "missing";

/** Changes when the content may have: a new inode (rename, symlink swap), size or mtime. */
function signature(path: string): string {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}:${realpathSync(path)}`;
  } catch {
    return MISSING;
  }
}

function realTarget(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

export function watchConfig(opts: WatchOptions): ConfigWatcher {
  const debounceMs = opts.debounceMs ?? 100;
  const pollIntervalMs = opts.pollIntervalMs ?? 2000;
  const main = resolve(opts.file);
  let files: string[] = [main];
  const baseline = new Map<string, string>();
  const watchers = new Map<string, FSWatcher>();
  // dir → (entry name → watched file it stands for), for names whose events need no stat.
  let interesting = new Map<string, Map<string, string>>();
  let closed = false;

  // Debounce state: the first trigger of the window is reported; a named event counts even
  // when the stat signature did not change (two same-size writes within the mtime granularity).
  let timer: ReturnType<typeof setTimeout> | null = null;
  let windowStart = 0;
  let namedTrigger: string | null = null;
  let pending = false;

  const safely = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (error) {
      log("error", "config.watch_error", { what, file: main, error });
    }
  };

  const changedFile = (): string | null => {
    let first: string | null = null;
    for (const f of files) {
      const sig = signature(f);
      if (baseline.get(f) !== sig) {
        baseline.set(f, sig);
        first ??= f;
      }
    }
    return first;
  };

  const fire = () => {
    timer = null;
    if (closed) return;
    const named = namedTrigger;
    namedTrigger = null;
    pending = false;
    const changed = changedFile(); // also refreshes the baseline so the poll does not repeat it
    safely("rearm", rearm); // the resolved target may have moved (symlink swap)
    const trigger = named ?? (changed ? `watch:${basename(changed)}` : null);
    if (trigger) safely("onChange", () => opts.onChange(trigger));
  };

  const schedule = (trigger: string | null) => {
    if (closed) return;
    if (trigger && !namedTrigger) namedTrigger = trigger;
    pending = true;
    const now = Date.now();
    if (timer === null) windowStart = now;
    else clearTimeout(timer);
    // Trailing debounce, capped so a steady stream of events still reloads now and then.
    const wait = Math.max(0, Math.min(debounceMs, windowStart + debounceMs * 10 - now));
    timer = setTimeout(fire, wait);
    timer.unref?.();
  };

  const onEvent = (dir: string, filename: unknown) => {
    const name = filename === null || filename === undefined ? null : String(filename);
    const file = name === null ? main : interesting.get(dir)?.get(name);
    // Unknown names (e.g. Kubernetes' `..data`) only count if a stat shows a change.
    schedule(file ? `watch:${basename(file)}` : null);
  };

  function rearm(): void {
    if (closed) return;
    const next = new Map<string, Map<string, string>>();
    const add = (path: string, file: string) => {
      const dir = dirname(path);
      if (!next.has(dir)) next.set(dir, new Map());
      next.get(dir)!.set(basename(path), file);
    };
    for (const f of files) {
      add(f, f);
      const real = realTarget(f);
      if (real && real !== f) add(real, f);
    }
    interesting = next;
    if (opts.disableFsWatch) return;
    for (const [dir, w] of watchers) {
      if (!next.has(dir)) {
        w.close();
        watchers.delete(dir);
      }
    }
    for (const dir of next.keys()) {
      if (watchers.has(dir)) continue;
      try {
        // Watching never keeps a process alive on its own; one runtime honours
        // persistent: false, the other only unref().
        const w = watch(dir, { persistent: false }, (_event, filename) => onEvent(dir, filename));
        w.unref?.();
        w.on("error", (error) => {
          // The directory went away or the watcher broke: drop it; the next poll or event
          // re-arms (not at once: a watcher that keeps failing would spin).
          log("warn", "config.watch_lost", { dir, error });
          w.close();
          if (watchers.get(dir) === w) watchers.delete(dir);
        });
        watchers.set(dir, w);
      } catch {
        // The directory does not exist (yet); the poll retries.
      }
    }
  }

  for (const f of files) baseline.set(f, signature(f));
  rearm();

  const poll = setInterval(() => {
    if (closed || pending) return;
    safely("poll", () => {
      rearm();
      const changed = changedFile();
      if (changed) {
        namedTrigger ??= `poll:${basename(changed)}`;
        schedule(null);
      }
    });
  }, pollIntervalMs);
  poll.unref?.();

  return {
    setExtraFiles(extra) {
      if (closed) return;
      const next = [main, ...new Set(extra.map((f) => resolve(f)).filter((f) => f !== main))];
      for (const f of next) if (!baseline.has(f)) baseline.set(f, signature(f));
      for (const f of files) if (!next.includes(f)) baseline.delete(f);
      files = next;
      safely("rearm", rearm);
    },
    close() {
      closed = true;
      clearInterval(poll);
      if (timer !== null) clearTimeout(timer);
      timer = null;
      for (const w of watchers.values()) w.close();
      watchers.clear();
    },
  };
}
