// read → parse → validate → compile, as one function used at start, by `check` and by reloads.
import { readFileSync } from "node:fs";
import { ConfigError } from "../errors.ts";
import { compileSnapshot, type CompileDeps, type Snapshot } from "./compile.ts";
import { parseConfig, type ParsedConfig } from "./parse.ts";
import type { Config } from "./schema.ts";

export interface LoadOptions extends CompileDeps {
  env: Readonly<Record<string, string | undefined>>;
  /** Keep this server section (static settings apply only at start). */
  server?: Config["server"];
}

export function readConfigBytes(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new ConfigError([{ file, line: 1, column: 1, path: "", message: code === "ENOENT" ? "file not found" : `cannot read the file (${code ?? (e as Error).message})` }]);
  }
}

export function parseFile(file: string, bytes: Uint8Array, env: LoadOptions["env"]): ParsedConfig {
  return parseConfig(bytes, file, { env });
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

export function loadSnapshot(file: string, generation: number, opts: LoadOptions): { snapshot: Snapshot; parsed: ParsedConfig } {
  const parsed = parseFile(file, readConfigBytes(file), opts.env);
  return { snapshot: compileParsed(parsed, file, generation, opts), parsed };
}
