// read → parse → validate → compile, as one function used at start, by `check` and by reloads.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { ConfigError } from "../errors.ts";
import { type CompileDeps, compileSnapshot, type Snapshot } from "./compile.ts";
import { parseConfig, type ParsedConfig, tooLarge } from "./parse.ts";
import { type Config, DEFAULT_MAX_CONFIG_SIZE, MAX_CONFIG_SIZE_LIMIT } from "./schema.ts";

export interface LoadOptions extends CompileDeps {
  env: Readonly<Record<string, string | undefined>>;
  /** Keep this server section (static settings apply only at start). */
  server?: Config["server"];
}

const HEAD_BYTES = 64 * 1024;
const CHUNK = 64 * 1024;

/**
 * server.maxConfigSize as written in the head of a file, before any parse: the block-style
 * `server:` mapping's own `maxConfigSize: N` line. Only used at start, to let a file declared
 * larger than the default through to the parse (which checks the value again).
 */
export function declaredMaxConfigSize(head: string): number | undefined {
  const lines = head.split(/\r?\n/);
  const start = lines.findIndex((l) => /^server:[ \t]*(#.*)?$/.test(l));
  if (start < 0) return undefined;
  let indent: string | undefined;
  for (const l of lines.slice(start + 1)) {
    if (/^[ \t]*(#.*)?$/.test(l)) continue;
    const m = /^( +)(\S.*)$/.exec(l);
    if (!m) return undefined; // the next top-level key: the server mapping ended
    indent ??= m[1];
    if (m[1] !== indent) continue;
    const v = /^maxConfigSize:[ \t]*([0-9]{1,12})[ \t]*(#.*)?$/.exec(m[2]!);
    if (v) return Number(v[1]);
  }
  return undefined;
}

function readError(file: string, e: unknown): ConfigError {
  const code = (e as { code?: string }).code;
  const known = code && /^E[A-Z]+$/.test(code) ? code : "error";
  return new ConfigError([{ file, line: 1, column: 1, path: "", message: code === "ENOENT" ? "file not found" : `cannot read the file (${known})` }]);
}

/**
 * The file's bytes, refused before they are all read when there are more than maxBytes (a
 * reload: the running server.maxConfigSize). Without maxBytes (start, `check`): the default
 * limit, or the larger one the file declares for itself (declaredMaxConfigSize).
 */
export function readConfigBytes(file: string, maxBytes?: number): Uint8Array {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (e) {
    throw readError(file, e);
  }
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw readError(file, { code: "EISDIR" });
    let limit = maxBytes ?? DEFAULT_MAX_CONFIG_SIZE;
    if (maxBytes === undefined && st.size > limit) {
      const head = Buffer.alloc(HEAD_BYTES);
      const n = readSync(fd, head, 0, HEAD_BYTES, 0);
      const declared = declaredMaxConfigSize(head.toString("utf8", 0, n));
      if (declared !== undefined) limit = Math.min(Math.max(declared, limit), MAX_CONFIG_SIZE_LIMIT);
    }
    if (st.size > limit) throw new ConfigError([tooLarge(file, st.size, limit)]);
    // Read at most limit + 1 bytes whatever the size said: the file may grow meanwhile, and
    // pipes and special files have no size.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = Math.min(CHUNK, limit + 1 - total);
      if (want <= 0) break;
      const buf = Buffer.allocUnsafe(want);
      const n = readSync(fd, buf, 0, want, total);
      if (n === 0) break;
      chunks.push(n === want ? buf : buf.subarray(0, n));
      total += n;
    }
    if (total > limit) throw new ConfigError([tooLarge(file, total, limit)]);
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw readError(file, e);
  } finally {
    closeSync(fd);
  }
}

export function parseFile(file: string, bytes: Uint8Array, env: LoadOptions["env"]): ParsedConfig {
  return parseConfig(bytes, file, { env, maxConfigSize: MAX_CONFIG_SIZE_LIMIT });
}

export function compileParsed(parsed: ParsedConfig, file: string, generation: number, opts: LoadOptions): Snapshot {
  const effective = opts.server ? { ...parsed, config: { ...parsed.config, server: opts.server } } : parsed;
  return compileSnapshot(effective, file, generation, opts);
}

/** Lets requests in flight progress between the steps of a big reload. */
export const tick = () => new Promise<void>((r) => setTimeout(r, 0));

/**
 * Deep-freezes a config as compileSnapshot does, a slice of a few ms at a time with the event
 * loop served in between (~25 ms in one go at 10,000 API keys). compileSnapshot skips what is
 * already frozen, so the snapshot ends up exactly as frozen as without this.
 */
export async function freezeInSlices(root: unknown, sliceMs = 4): Promise<void> {
  const stack: unknown[] = [root];
  let until = performance.now() + sliceMs;
  let n = 0;
  while (stack.length) {
    const o = stack.pop();
    if (o === null || typeof o !== "object" || Object.isFrozen(o)) continue;
    Object.freeze(o);
    for (const v of Object.values(o)) if (v !== null && typeof v === "object") stack.push(v);
    if (++n % 512 === 0 && performance.now() > until) {
      await tick();
      until = performance.now() + sliceMs;
    }
  }
}

/** compileParsed for a reload: the same snapshot, with requests served between its longer steps. */
export async function compileParsedYielding(parsed: ParsedConfig, file: string, generation: number, opts: LoadOptions): Promise<Snapshot> {
  await freezeInSlices(parsed.config);
  await tick();
  return compileParsed(parsed, file, generation, opts);
}

/** Read (within server.maxConfigSize as start and `check` apply it), parse and validate. */
export function loadParsed(file: string, env: LoadOptions["env"]): ParsedConfig {
  return parseFile(file, readConfigBytes(file), env);
}

export function loadSnapshot(file: string, generation: number, opts: LoadOptions): { snapshot: Snapshot; parsed: ParsedConfig } {
  const parsed = loadParsed(file, opts.env);
  return { snapshot: compileParsed(parsed, file, generation, opts), parsed };
}
