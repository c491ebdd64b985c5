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

export function loadSnapshot(file: string, generation: number, opts: LoadOptions): { snapshot: Snapshot; parsed: ParsedConfig } {
  const parsed = parseFile(file, readConfigBytes(file), opts.env);
  return { snapshot: compileParsed(parsed, file, generation, opts), parsed };
}
