// read → parse YAML (with positions) → substitute ${env:…}/${file:…} → validate → check references.
// Every problem is collected with its file:line:col; nothing stops at the first one.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit as visitYaml, type Document, type Node } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { Config } from "./schema.ts";
import { checkReferences } from "./references.ts";

export type Path = readonly (string | number)[];

export interface ParseEnv {
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a file referenced by ${file:…}; default: fs. */
  readFile?: (path: string) => string;
}

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

export function pathToString(path: Path): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${p}` : p;
  return out;
}

/** A tree walk that remembers the key node and the value node of every path. */
class Locator {
  private readonly lc: LineCounter;
  private readonly doc: Document;
  constructor(doc: Document, lc: LineCounter) {
    this.doc = doc;
    this.lc = lc;
  }
  private pos(offset: number | undefined): { line: number; column: number } {
    if (offset === undefined) return { line: 1, column: 1 };
    const p = this.lc.linePos(offset);
    return { line: p.line, column: p.col };
  }
  /** Position of the value at path, or of its nearest existing ancestor; key: position of the key instead. */
  locate(path: Path, key = false): { line: number; column: number } {
    let node: unknown = this.doc.contents;
    let lastKey: Node | undefined;
    let best: number | undefined = (node as Node | null)?.range?.[0];
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((it) => isScalar(it.key) && String(it.key.value) === String(seg));
        if (!pair) return this.pos(best);
        lastKey = pair.key as Node;
        node = pair.value;
        best = (node as Node | null)?.range?.[0] ?? lastKey?.range?.[0] ?? best;
      } else if (isSeq(node) && typeof seg === "number") {
        const item = node.items[seg];
        if (!item) return this.pos(best);
        lastKey = undefined;
        node = item;
        best = (item as Node).range?.[0] ?? best;
      } else return this.pos(best);
    }
    if (key && lastKey?.range) return this.pos(lastKey.range[0]);
    return this.pos(best);
  }
}

const SUBST = /\$\{(env|file):([^}]*)\}|\$\$\{/g;

function substituteAll(doc: Document, file: string, penv: ParseEnv, problems: ConfigProblem[], files: Set<string>, loc: Locator): void {
  const baseDir = dirname(resolve(file));
  const read = penv.readFile ?? ((p: string) => readFileSync(p, "utf8"));
  // One path stack for the whole walk, copied only where a reference is found: a config of
  // 10,000 API keys has ~100,000 nodes, and a fresh array per node cost more than the checks.
  const path: (string | number)[] = [];
  const visit = (node: unknown): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair) || !isScalar(pair.key)) continue;
        path.push(String(pair.key.value));
        visit(pair.value);
        path.pop();
      }
    } else if (isSeq(node)) {
      for (let i = 0; i < node.items.length; i++) {
        path.push(i);
        visit(node.items[i]);
        path.pop();
      }
    } else if (isScalar(node) && typeof node.value === "string" && node.value.includes("${")) {
      const here = [...path];
      const original = node.value;
      node.value = original.replace(SUBST, (whole, kind: string | undefined, arg: string | undefined) => {
        if (!kind) return "${"; // "$${" escapes a literal "${"
        const at = loc.locate(here);
        // On failure the reference stays as written, so validation does not add a second,
        // confusing problem ("must not be empty") for the same value.
        const problem = (message: string) => {
          problems.push({ file, ...at, path: pathToString(here), message });
          return whole;
        };
        const ref = (arg ?? "").trim();
        if (!ref) return problem(`empty \${${kind}:} reference`);
        if (kind === "env") {
          const v = penv.env[ref];
          return v === undefined ? problem(`environment variable ${ref} is not set`) : v;
        }
        const abs = isAbsolute(ref) ? ref : resolve(baseDir, ref);
        files.add(abs);
        try {
          const content = read(abs);
          // One trailing newline is an artefact of editors and `echo`, not part of the secret.
          return content.endsWith("\r\n") ? content.slice(0, -2) : content.endsWith("\n") ? content.slice(0, -1) : content;
        } catch (e) {
          const code = (e as { code?: string }).code;
          return problem(`cannot read \${file:${ref}}${code ? ` (${code})` : ""}${isAbsolute(ref) ? "" : "; relative paths start at the config file's directory"}`);
        }
      });
    }
  };
  visit(doc.contents);
}

function similar(a: string, b: string): number {
  // Levenshtein distance, small strings only.
  const m = a.length,
    n = b.length;
  const d = Array.from({ length: m + 1 }, (_, i) => [i, ...Array(n).fill(0)] as number[]);
  for (let j = 1; j <= n; j++) d[0][j] = j;
  for (let i = 1; i <= m; i++)
    for (let j = 1; j <= n; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
  return d[m][n];
}

/** The keys allowed at a path, to suggest the near miss of an unknown key. */
function allowedKeys(value: unknown, path: Path): string[] {
  let schema: z.ZodType = Config as z.ZodType;
  let v: unknown = value;
  const unwrap = (s: z.ZodType): z.ZodType => {
    let cur = s as unknown as { def: { type: string; innerType?: z.ZodType; options?: z.ZodType[]; in?: z.ZodType } };
    for (let i = 0; i < 10; i++) {
      const t = cur.def.type;
      if ((t === "default" || t === "prefault" || t === "optional" || t === "nullable") && cur.def.innerType) cur = cur.def.innerType as never;
      else if (t === "pipe" && cur.def.in) cur = cur.def.in as never;
      else break;
    }
    return cur as unknown as z.ZodType;
  };
  for (const seg of [...path, null]) {
    schema = unwrap(schema);
    const def = (schema as unknown as { def: { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType; options?: z.ZodType[] } }).def;
    if (def.type === "union" && def.options) {
      const plugin = (v as { plugin?: unknown } | null)?.plugin;
      const opt = def.options.find((o) => {
        const sh = (unwrap(o) as unknown as { def: { shape?: Record<string, { def: { values?: unknown[] } }> } }).def.shape;
        return sh?.plugin?.def.values?.includes(plugin);
      });
      if (!opt) return [];
      schema = unwrap(opt);
    }
    const d2 = (schema as unknown as { def: { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType } }).def;
    if (seg === null) return d2.shape ? Object.keys(d2.shape) : [];
    if (d2.type === "object" && d2.shape) {
      schema = d2.shape[seg as string];
      if (!schema) return [];
    } else if (d2.type === "array" && d2.element) schema = d2.element;
    else return [];
    v = (v as Record<string | number, unknown> | null)?.[seg as never];
  }
  return [];
}

function zodProblems(error: z.ZodError, value: unknown, file: string, loc: Locator): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const path = issue.path as (string | number)[];
    if (issue.code === "unrecognized_keys") {
      const known = allowedKeys(value, path);
      for (const k of issue.keys) {
        const near = known.map((c) => [c, similar(k, c)] as const).filter(([, d]) => d <= Math.max(2, Math.floor(k.length / 3))).sort((a, b) => a[1] - b[1])[0];
        out.push({
          file,
          ...loc.locate([...path, k], true),
          path: pathToString([...path, k]),
          message: `unknown key "${k}"${near ? ` (did you mean "${near[0]}"?)` : known.length ? ` (allowed: ${known.join(", ")})` : ""}`,
        });
      }
      continue;
    }
    let message = friendlyMessage(issue);
    const parent = path.slice(0, -1);
    const last = path[path.length - 1];
    let holder: unknown = value;
    for (const p of parent) holder = (holder as Record<string | number, unknown> | null)?.[p as never];
    const present = holder !== null && typeof holder === "object" && last !== undefined && (last as never) in (holder as object);
    if (issue.code === "invalid_type" && !present && last !== undefined) message = `missing required key "${last}"`;
    if ((issue.code === "invalid_union" || issue.code === "invalid_format") && path[path.length - 1] === "validUntil") message = "expected epoch milliseconds or an ISO 8601 date-time with offset (e.g. 2027-01-31T00:00:00Z)";
    out.push({ file, ...loc.locate(path), path: pathToString(path), message });
  }
  return out;
}

function friendlyMessage(issue: z.core.$ZodIssue): string {
  const i = issue as z.core.$ZodIssue & { origin?: string; minimum?: number | bigint; maximum?: number | bigint };
  if (i.code === "too_small" && i.message.startsWith("Too small")) {
    if (i.origin === "string") return Number(i.minimum) <= 1 ? "must not be empty" : `must be at least ${i.minimum} characters`;
    if (i.origin === "array") return `needs at least ${i.minimum} item${Number(i.minimum) === 1 ? "" : "s"}`;
    return `must be at least ${i.minimum}`;
  }
  if (i.code === "too_big" && i.message.startsWith("Too big")) {
    if (i.origin === "string") return `must be at most ${i.maximum} characters`;
    if (i.origin === "array") return `must have at most ${i.maximum} items`;
    return `must be at most ${i.maximum}`;
  }
  if (i.code === "invalid_value" && i.message.startsWith("Invalid option")) return i.message.replace(/^Invalid option: /, "");
  return i.message.replace(/^Invalid input: /, "");
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Parse and validate a config from its bytes. Throws ConfigError listing every problem. */
export function parseConfig(bytes: Uint8Array | string, file: string, penv: ParseEnv): ParsedConfig {
  const text = typeof bytes === "string" ? bytes : new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  const sha256 = sha256Hex(bytes);
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true, merge: false });
  const problems: ConfigProblem[] = [];
  for (const e of doc.errors) {
    const at = e.linePos?.[0] ?? (e.pos ? lc.linePos(e.pos[0]) : { line: 1, col: 1 });
    problems.push({ file, line: at.line, column: at.col, path: "", message: `YAML: ${e.message.split("\n")[0]}` });
  }
  if (problems.length) throw new ConfigError(problems);
  const loc = new Locator(doc, lc);
  if (doc.contents === null || (isScalar(doc.contents) && (doc.contents.value === null || doc.contents.value === ""))) {
    throw new ConfigError([{ file, line: 1, column: 1, path: "", message: "the file is empty (expected a mapping with server, plugins, routes, apikeys, keypairs)" }]);
  }
  if (!isMap(doc.contents)) {
    throw new ConfigError([{ file, ...loc.locate([]), path: "", message: "expected a mapping at the top level (server, plugins, routes, apikeys, keypairs)" }]);
  }
  const files = new Set<string>();
  substituteAll(doc, file, penv, problems, files, loc);
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
    for (const p of checkReferences(result.data)) {
      const at = loc.locate(p.path, p.atKey === true);
      (p.severity === "warning" ? warnings : problems).push({ file, ...at, path: pathToString(p.path), message: p.message, severity: p.severity ?? "error" });
    }
  }
  if (problems.length) {
    problems.sort((a, b) => a.line - b.line || a.column - b.column);
    throw new ConfigError(problems);
  }
  return { config: result.data as Config, sha256, files: [...files], warnings, locate: (path) => loc.locate(path) };
}
