// Quota counter backends. A backend checks every window of a call and increments them all, or
// none, in one atomic step: the in-memory one because the step is synchronous JavaScript, the
// Redis one (redis.ts) because it runs as one Lua script.
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync } from "node:fs";
import { chmod, open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { pid } from "node:process";
import { log } from "../log.ts";

export type WindowName = "second" | "daily" | "monthly";

/** One fixed window of one call: which window it is now, its limit, and when it ends. */
export interface WindowSlot {
  readonly name: WindowName;
  /** The window's identity, e.g. "1769903999" (UTC second), "2026-01-31", "2026-01". */
  readonly id: string;
  /** undefined: counted but not limited. */
  readonly limit: number | undefined;
  /** Epoch ms at which the window ends. */
  readonly resetAt: number;
}

/** counts[i] is for slots[i]: after this call when allowed, the unchanged count when refused. */
export interface ConsumeOutcome {
  allowed: boolean;
  counts: number[];
}

export interface StoreHealth {
  healthy: boolean;
  lastError?: string;
}

export interface CounterStore {
  readonly kind: "memory" | "redis";
  /** Rejects (Redis) when the store cannot answer; never half-applies a call. */
  consume(clientId: string, slots: readonly WindowSlot[], now: number): ConsumeOutcome | Promise<ConsumeOutcome>;
  health(): StoreHealth;
  close(): Promise<void>;
}

/** Check every limit, then increment every window; synchronous, so exact under concurrency. */
function checkAndIncrement(read: (slot: WindowSlot) => number, write: (slot: WindowSlot, n: number) => void, slots: readonly WindowSlot[]): ConsumeOutcome {
  const counts = slots.map(read);
  const refused = slots.some((s, i) => s.limit !== undefined && counts[i]! + 1 > s.limit);
  if (refused) return { allowed: false, counts };
  slots.forEach((s, i) => write(s, ++counts[i]!));
  return { allowed: true, counts };
}

interface Entry {
  /** Window id the count belongs to; another id means the window has rolled over. */
  w: string;
  n: number;
  /** Epoch ms the window ends; used to drop stale entries. */
  exp: number;
}

const FILE_VERSION = 1;

/**
 * Counters in memory, one entry per (client, window kind), written to <stateDir>/quotas.json
 * every flushIntervalMs and at close(). A crash loses the calls counted since the last flush.
 */
export function createMemoryStore(opts: { stateDir: string; flushIntervalMs: number }): CounterStore {
  const file = join(opts.stateDir, "quotas.json");
  const entries = load(file, Date.now());
  let dirty = false;
  let flushing: Promise<void> | null = null;
  let lastError: string | undefined;

  const keyOf = (clientId: string, slot: WindowSlot) => `${slot.name[0]}:${clientId}`;

  const flush = async (): Promise<void> => {
    while (flushing) await flushing; // one writer at a time; the next one sees the latest counts
    if (!dirty) return;
    dirty = false;
    const now = Date.now();
    const out: Record<string, Entry> = {};
    for (const [k, e] of entries) {
      if (e.exp <= now) entries.delete(k); // the window is over: forget it (prunes memory too)
      else out[k] = e;
    }
    flushing = writeAtomically(file, JSON.stringify({ version: FILE_VERSION, savedAt: new Date(now).toISOString(), counters: out }))
      .then(() => {
        if (lastError !== undefined) log("info", "quota.persist_recovered", { file });
        lastError = undefined;
      })
      .catch((err: unknown) => {
        dirty = true; // try again at the next tick
        const message = `cannot write ${file}: ${(err as Error).message}`;
        if (lastError === undefined) log("warn", "quota.persist_failed", { file, error: (err as Error).message });
        lastError = message;
      })
      .finally(() => {
        flushing = null;
      });
    await flushing;
  };

  const timer = setInterval(() => void flush(), opts.flushIntervalMs);
  // The timer must never keep a stopping process alive; close() does the last write.
  (timer as { unref?: () => void }).unref?.();

  return {
    kind: "memory",
    consume(clientId, slots) {
      const read = (s: WindowSlot) => {
        const e = entries.get(keyOf(clientId, s));
        return e !== undefined && e.w === s.id ? e.n : 0;
      };
      const write = (s: WindowSlot, n: number) => {
        entries.set(keyOf(clientId, s), { w: s.id, n, exp: s.resetAt });
        dirty = true;
      };
      return checkAndIncrement(read, write, slots);
    },
    health: () => (lastError === undefined ? { healthy: true } : { healthy: false, lastError }),
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}

function load(file: string, now: number): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") log("warn", "quota.state_unreadable", { file, error: (err as Error).message });
    return entries;
  }
  try {
    const data = JSON.parse(text) as { version?: unknown; counters?: unknown };
    if (data?.version !== FILE_VERSION || typeof data.counters !== "object" || data.counters === null) throw new Error("not a quotas.json of version 1");
    for (const [k, v] of Object.entries(data.counters as Record<string, unknown>)) {
      const e = v as Partial<Entry> | null;
      const valid = /^[smd]:/.test(k) && typeof e?.w === "string" && Number.isSafeInteger(e.n) && e.n! >= 0 && Number.isFinite(e.exp);
      if (!valid) throw new Error(`bad entry "${k}"`);
      if (e.exp! > now) entries.set(k, { w: e.w!, n: e.n!, exp: e.exp! });
    }
    return entries;
  } catch (err) {
    // Never crash on our own state file: start from zero, and keep the bad file for a look.
    log("warn", "quota.state_corrupt", { file, error: (err as Error).message, action: "starting with empty counters" });
    try {
      renameSync(file, `${file}.corrupt`);
    } catch {
      // read-only directory: the next flush reports it
    }
    return new Map();
  }
}

/** tmp file (0600) + fsync + rename: readers and restarts see the old file or the new one. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const dir = join(file, "..");
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${pid}.${randomBytes(6).toString("hex")}.tmp`;
  const fh = await open(tmp, "wx", 0o600);
  try {
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await chmod(tmp, 0o600); // the umask can only remove bits; this makes the mode explicit
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}
