// Shared quota counters in Redis, over a minimal RESP2 client on node:net / node:tls (no
// dependency). The check-and-increment of a call's windows is one Lua script, so instances
// sharing a Redis stay exact: Redis runs a script atomically (EVAL, "Atomicity of scripts").
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { connect as netConnect, isIP, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import type { ConsumeOutcome, CounterStore, WindowSlot } from "./counter-store.ts";

export type Reply = string | number | null | RedisError | Reply[];

export class RedisError extends Error {
  override name = "RedisError";
}

export type RedisTarget = { host: string; port: number; db: number; tls: boolean; username?: string; password?: string };

/**
 * Why a server.store URL cannot be used, or null when it can. Config validation calls it, so
 * `check` refuses what the start would. The URL may hold a password: a message never quotes it.
 */
export function redisUrlProblem(url: string): string | null {
  if (!URL.canParse(url)) return "not a valid Redis URL";
  const u = new URL(url);
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") return 'expected "redis://" or "rediss://"';
  if (!u.hostname) return "the Redis URL has no host";
  if (u.search || u.hash) return "the Redis URL may not have a query or a fragment";
  try {
    decodeURIComponent(u.username);
    decodeURIComponent(u.password);
  } catch {
    return "the Redis URL's user or password has a malformed %-escape";
  }
  if (u.pathname.length > 1 && !/^\/(0|[1-9][0-9]{0,4})$/.test(u.pathname)) return "the Redis database (after the host) must be a number, e.g. redis://host:6379/0";
  return null;
}

/** redis://[user[:password]@]host[:port][/db] (rediss:// for TLS). */
export function parseRedisUrl(url: string): RedisTarget {
  const problem = redisUrlProblem(url);
  if (problem) throw new Error(`server.store: ${problem}`);
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  const t: RedisTarget = { host: u.hostname.replace(/^\[(.*)\]$/, "$1"), port: u.port ? Number(u.port) : 6379, db, tls: u.protocol === "rediss:" };
  if (u.password) t.password = decodeURIComponent(u.password);
  if (u.username && u.password) t.username = decodeURIComponent(u.username);
  else if (u.username) t.password = decodeURIComponent(u.username); // redis://secret@host, as redis-cli reads it
  return t;
}

export function encodeCommand(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
  return out;
}

/** One reply starting at `i` and where the next begins; undefined: not all bytes are here yet. */
export function parseReply(b: Buffer, i: number): [Reply, number] | undefined {
  const eol = b.indexOf("\r\n", i);
  if (eol < 0) return undefined;
  const line = b.toString("utf8", i + 1, eol);
  switch (b[i]) {
    case 0x2b:
      return [line, eol + 2]; // + simple string
    case 0x2d:
      return [new RedisError(line), eol + 2]; // - error
    case 0x3a:
      return [Number(line), eol + 2]; // : integer
    case 0x24: { // $ bulk string
      const n = Number(line);
      if (n < 0) return [null, eol + 2];
      const end = eol + 2 + n;
      return b.length < end + 2 ? undefined : [b.toString("utf8", eol + 2, end), end + 2];
    }
    case 0x2a: { // * array
      const n = Number(line);
      if (n < 0) return [null, eol + 2];
      const items: Reply[] = [];
      let p = eol + 2;
      for (let k = 0; k < n; k++) {
        const r = parseReply(b, p);
        if (!r) return undefined;
        items.push(r[0]);
        p = r[1];
      }
      return [items, p];
    }
    default:
      throw new Error(`RESP protocol error: unexpected byte 0x${(b[i] ?? 0).toString(16)}`);
  }
}

type Pending = { resolve(r: Reply): void; reject(e: Error): void; timer: ReturnType<typeof setTimeout> };

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;

/**
 * Connects on first use. Replies come back in order, so a timed-out command cannot be skipped:
 * the connection is dropped and every pending command fails. While in backoff after a failure,
 * commands fail at once instead of queueing behind a dead server.
 */
export class RedisClient {
  private readonly target: RedisTarget;
  private readonly timeoutMs: number;
  private socket: Socket | null = null;
  private ready: Promise<void> | null = null;
  private readonly pending: Pending[] = [];
  private buf: Buffer = Buffer.alloc(0);
  private failures = 0;
  private retryAt = 0;
  private closed = false;
  lastError: string | undefined;

  constructor(target: RedisTarget, timeoutMs: number) {
    this.target = target;
    this.timeoutMs = timeoutMs;
  }

  async command(args: readonly string[]): Promise<Reply> {
    if (this.closed) throw new Error("Redis client closed");
    await this.connect();
    const reply = await this.send(args);
    this.lastError = undefined;
    return reply;
  }

  close(): void {
    this.closed = true;
    this.fail(new Error("Redis client closed"));
  }

  private connect(): Promise<void> {
    if (this.ready) return this.ready;
    const wait = this.retryAt - Date.now();
    if (wait > 0) return Promise.reject(new Error(`${this.lastError ?? "unavailable"} (next attempt in ${wait} ms)`));
    const { host, port, tls } = this.target;
    // RFC 6066 §3: SNI carries host names only, never an address.
    const sock = tls ? tlsConnect({ host, port, servername: isIP(host) ? undefined : host }) : netConnect({ host, port });
    this.socket = sock;
    const opened = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`connect to ${host}:${port} timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
      sock.once(tls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        resolve();
      });
      sock.once("close", () => {
        clearTimeout(timer);
        reject(new Error(this.lastError ?? "connection closed"));
      });
    });
    sock.setNoDelay(true);
    sock.on("data", (chunk: Buffer) => sock === this.socket && this.onData(chunk));
    sock.on("error", (err) => sock === this.socket && this.fail(err));
    sock.on("close", () => sock === this.socket && this.fail(new Error(`connection to ${host}:${port} closed`)));
    const ready = opened.then(async () => {
      const { username, password, db } = this.target;
      if (password !== undefined) await this.send(username ? ["AUTH", username, password] : ["AUTH", password]);
      if (db !== 0) await this.send(["SELECT", String(db)]);
      this.failures = 0;
    });
    this.ready = ready.catch((err: Error) => {
      if (sock === this.socket) this.fail(err); // e.g. AUTH refused: drop this connection too
      throw err;
    });
    return this.ready;
  }

  private send(args: readonly string[]): Promise<Reply> {
    const sock = this.socket;
    if (!sock) return Promise.reject(new Error(this.lastError ?? "not connected"));
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`command timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
      this.pending.push({ resolve, reject, timer });
      sock.write(encodeCommand(args));
    });
  }

  private onData(chunk: Buffer): void {
    const b = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let pos = 0;
    try {
      for (let r = parseReply(b, pos); r; r = parseReply(b, pos)) {
        pos = r[1];
        const p = this.pending.shift();
        if (!p) throw new Error("RESP protocol error: unexpected reply");
        clearTimeout(p.timer);
        if (r[0] instanceof RedisError) p.reject(r[0]);
        else p.resolve(r[0]);
      }
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.buf = b.subarray(pos);
  }

  private fail(err: Error): void {
    const sock = this.socket;
    this.socket = null;
    this.ready = null;
    this.buf = Buffer.alloc(0);
    sock?.destroy();
    if (!this.closed) {
      this.lastError = err.message;
      // Exponential backoff so a dead Redis costs one failed connect per interval, not per call.
      if (sock) this.failures++;
      this.retryAt = Date.now() + Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, this.failures - 1));
    }
    for (const p of this.pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}

// KEYS: one per window; ARGV: the limits (0 = not limited), then each key's TTL in ms.
// Refuses without counting when any limit is reached, else increments every window.
const SCRIPT = `
local n, counts, refused = #KEYS, {}, 0
for i = 1, n do
  counts[i] = tonumber(redis.call('GET', KEYS[i]) or '0')
  local limit = tonumber(ARGV[i])
  if limit > 0 and counts[i] >= limit then refused = 1 end
end
if refused == 0 then
  for i = 1, n do
    counts[i] = redis.call('INCR', KEYS[i])
    if counts[i] == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[n + i]) end
  end
end
table.insert(counts, 1, 1 - refused)
return counts`;

// Keys carry their window id, so a TTL only frees memory. The margin keeps a key alive while an
// instance whose clock is a little behind still counts in that window.
const TTL_MARGIN_MS = 10_000;

export function createRedisStore(url: string, opts: { timeoutMs: number }): CounterStore {
  const client = new RedisClient(parseRedisUrl(url), opts.timeoutMs);
  // {clientId} is a Redis Cluster hash tag: a call's keys share a slot, as EVAL requires there.
  const keyOf = (clientId: string, s: WindowSlot) => `otoroshi-lite:quota:{${clientId}}:${s.name}:${s.id}`;

  return {
    kind: "redis",
    async consume(clientId, slots, now): Promise<ConsumeOutcome> {
      const keys = slots.map((s) => keyOf(clientId, s));
      const argv = [...slots.map((s) => String(s.limit ?? 0)), ...slots.map((s) => String(Math.max(1, s.resetAt - now) + TTL_MARGIN_MS))];
      const reply = await runScript(client, SCRIPT, keys, argv);
      if (!Array.isArray(reply) || reply.length !== slots.length + 1 || reply.some((v) => typeof v !== "number")) {
        throw new Error("unexpected reply from the quota script");
      }
      const [allowed, ...counts] = reply as number[];
      return { allowed: allowed === 1, counts };
    },
    health: () => (client.lastError === undefined ? { healthy: true } : { healthy: false, lastError: client.lastError }),
    close: async () => client.close(),
  };
}

const shas = new Map<string, string>();

/** Runs a Lua script by its SHA1 (EVALSHA), sending its text only when the server does not know
 * it yet (a first call, or after SCRIPT FLUSH). */
export async function runScript(client: RedisClient, script: string, keys: readonly string[], argv: readonly string[]): Promise<Reply> {
  let sha = shas.get(script);
  if (sha === undefined) shas.set(script, sha = createHash("sha1").update(script).digest("hex"));
  const rest = [String(keys.length), ...keys, ...argv];
  try {
    return await client.command(["EVALSHA", sha, ...rest]);
  } catch (err) {
    if (!(err instanceof RedisError && err.message.startsWith("NOSCRIPT"))) throw err;
    return client.command(["EVAL", script, ...rest]);
  }
}
