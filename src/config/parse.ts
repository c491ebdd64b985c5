// read → parse YAML (with positions) → substitute ${env:…}/${file:…} → validate → check references.
// Every problem is collected with its file:line:col; nothing stops at the first one. No problem
// message quotes a value from the file (values may be secrets): positions and paths say where.
import { createHash } from "node:crypto";
import { isAlias, isMap, isScalar, visit as visitYaml } from "yaml";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { withoutValue, zodProblems } from "./problems.ts";
import { checkReferences } from "./references.ts";
import { Config, MAX_CONFIG_SIZE_LIMIT } from "./schema.ts";
import { type ParseEnv, substituteAll } from "./substitute.ts";
import { Locator, parseYaml, type Path, pathToString } from "./yaml.ts";

export { type ParseEnv, type Path, pathToString };

export interface ParsedConfig {
  config: Config;
  /** sha-256 hex of the config file's bytes. */
  sha256: string;
  /** Absolute paths of files read through ${file:…}. */
  files: string[];
  warnings: ConfigProblem[];
  /** Finds where a path is in the file (for problems raised later, e.g. while importing keys). */
  locate: (path: Path) => { line: number; column: number };
}

export interface ParseLimits {
  /** Bytes; larger input is refused before it is parsed. Default: MAX_CONFIG_SIZE_LIMIT (callers read files with readConfigBytes, which applies server.maxConfigSize). */
  maxConfigSize?: number;
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

const MIB = 1024 * 1024;
/** "1.5 MiB (1572864 bytes)": sizes in problems. */
export function sizeText(n: number): string {
  return n >= MIB ? `${(n / MIB).toFixed(1).replace(/\.0$/, "")} MiB (${n} bytes)` : `${n} bytes`;
}

export function tooLarge(file: string, size: number, limit: number, what = "server.maxConfigSize"): ConfigProblem {
  return { file, line: 1, column: 1, path: "", message: `the file is ${sizeText(size)}, more than ${what} (${sizeText(limit)}); it was not parsed` };
}

/** Parse and validate a config from its bytes. Throws ConfigError listing every problem. */
export function parseConfig(bytes: Uint8Array | string, file: string, penv: ParseEnv & ParseLimits): ParsedConfig {
  const size = typeof bytes === "string" ? Buffer.byteLength(bytes) : bytes.length;
  const limit = penv.maxConfigSize ?? MAX_CONFIG_SIZE_LIMIT;
  if (size > limit) throw new ConfigError([tooLarge(file, size, limit)]);
  const text = typeof bytes === "string" ? bytes : new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  const sha256 = sha256Hex(bytes);
  const { doc, lc, problems } = parseYaml(text, file);
  if (problems.length) throw new ConfigError(problems);
  const loc = new Locator(doc, lc);
  if (doc.contents === null || (isScalar(doc.contents) && (doc.contents.value === null || doc.contents.value === ""))) {
    throw new ConfigError([{ file, line: 1, column: 1, path: "", message: "the file is empty (expected a mapping with server, plugins, routes, apikeys, keypairs)" }]);
  }
  if (!isMap(doc.contents)) {
    throw new ConfigError([{ file, ...loc.locate([]), path: "", message: "expected a mapping at the top level (server, plugins, routes, apikeys, keypairs)" }]);
  }
  const files = new Set<string>();
  substituteAll(doc, text, file, penv, problems, files, loc);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
  } catch {
    // The yaml library's message would echo the alias name — often an unquoted secret that
    // starts with "*" — so the problem is located and described without the value.
    const aliasProblems: ConfigProblem[] = [];
    visitYaml(doc, {
      Alias(_, node) {
        if (isAlias(node) && node.resolve(doc) === undefined) {
          const at = node.range ? lc.linePos(node.range[0]) : { line: 1, col: 1 };
          aliasProblems.push({ file, line: at.line, column: at.col, path: "", message: 'YAML: a value starting with "*" is an alias and no anchor of that name is defined; quote the value' });
        }
      },
    });
    throw new ConfigError(aliasProblems.length ? aliasProblems : [{ file, line: 1, column: 1, path: "", message: "YAML: too many aliases (at most 100 alias expansions are allowed)" }]);
  }
  const result = Config.safeParse(raw);
  if (!result.success) problems.push(...zodProblems(result.error, raw, file, loc));
  const warnings: ConfigProblem[] = [];
  if (result.success) {
    const config = result.data;
    // The limit a file sets for itself holds at start, in `check` and for reloads alike.
    if (size > config.server.maxConfigSize) {
      problems.push({ file, ...loc.locate(["server", "maxConfigSize"]), path: "server.maxConfigSize", message: `the file is ${sizeText(size)}, more than the limit set here` });
    }
    for (const p of checkReferences(config)) {
      const at = loc.locate(p.path, p.atKey === true);
      const valueAt = loc.node(p.path);
      const message = withoutValue(p.message, isScalar(valueAt) ? valueAt.value : undefined);
      (p.severity === "warning" ? warnings : problems).push({ file, ...at, path: pathToString(p.path), message, severity: p.severity ?? "error" });
    }
  }
  if (problems.length) {
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new ConfigError(problems);
  }
  return { config: result.data as Config, sha256, files: [...files], warnings, locate: (path) => loc.locate(path) };
}
