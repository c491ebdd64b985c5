// Schema (zod) issues → config problems with positions, in words a user acts on, never quoting a
// value from the file (keys may be named: they are not secret).
import type { z } from "zod";
import type { ConfigProblem } from "../errors.ts";
import { Config } from "./schema.ts";
import { type Locator, type Path, pathToString, showableKey } from "./yaml.ts";

function similar(a: string, b: string): number {
  // Levenshtein distance, small strings only.
  const m = a.length,
    n = b.length;
  const d = Array.from({ length: m + 1 }, (_, i) => [i, ...Array(n).fill(0)] as number[]);
  for (let j = 1; j <= n; j++) d[0][j] = j;
  for (let i = 1; i <= m; i++) {
    for (let j = 1; j <= n; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
  }
  return d[m][n];
}

function nearest(k: string, known: readonly string[]): string | undefined {
  if (!k || k.length > 64) return undefined;
  return known.map((c) => [c, similar(k, c)] as const).filter(([, d]) => d <= Math.max(2, Math.floor(k.length / 3))).sort((a, b) => a[1] - b[1])[0]?.[0];
}

type Def = { type: string; innerType?: z.ZodType; in?: z.ZodType; shape?: Record<string, z.ZodType>; element?: z.ZodType; options?: z.ZodType[] };
const defOf = (s: z.ZodType) => (s as unknown as { def: Def }).def;

/** The keys allowed at a path, to suggest the near miss of an unknown key. */
function allowedKeys(value: unknown, path: Path): string[] {
  let schema: z.ZodType = Config as z.ZodType;
  let v: unknown = value;
  const unwrap = (s: z.ZodType): z.ZodType => {
    let cur = s;
    for (let i = 0; i < 10; i++) {
      const d = defOf(cur);
      if ((d.type === "default" || d.type === "prefault" || d.type === "optional" || d.type === "nullable") && d.innerType) cur = d.innerType;
      else if (d.type === "pipe" && d.in) cur = d.in;
      else break;
    }
    return cur;
  };
  for (const seg of [...path, null]) {
    schema = unwrap(schema);
    const def = defOf(schema);
    if (def.type === "union" && def.options) {
      const plugin = (v as { plugin?: unknown } | null)?.plugin;
      const opt = def.options.find((o) => {
        const sh = defOf(unwrap(o)).shape as Record<string, { def: { values?: unknown[] } }> | undefined;
        return sh?.plugin?.def.values?.includes(plugin);
      });
      if (!opt) return [];
      schema = unwrap(opt);
    }
    const d2 = defOf(schema);
    if (seg === null) return d2.shape ? Object.keys(d2.shape) : [];
    if (d2.type === "object" && d2.shape) {
      const next = d2.shape[seg as string];
      if (!next) return [];
      schema = next;
    } else if (d2.type === "array" && d2.element) schema = d2.element;
    else return [];
    v = (v as Record<string | number, unknown> | null)?.[seg as never];
  }
  return [];
}

/**
 * The message without the value it is about. Messages are written not to quote values; this
 * is the safety net for messages that come from elsewhere (a validator in another module).
 */
export function withoutValue(message: string, value: unknown): string {
  if (typeof value !== "string" || value.trim().length < 4) return message;
  let out = message;
  for (const v of new Set([value, value.trim(), value.trim().toLowerCase()])) if (v.length >= 4) out = out.split(v).join("…");
  return out;
}

export function zodProblems(error: z.ZodError, value: unknown, file: string, loc: Locator): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  // Unknown keys of one mapping share their allowed keys: computed once per mapping (a file
  // with 80,000 unknown keys gets 80,000 problems, not 80,000 schema walks).
  const allowedAt = new Map<string, string[]>();
  for (const issue of error.issues) {
    const path = issue.path as (string | number)[];
    if (issue.code === "unrecognized_keys") {
      const at = JSON.stringify(path);
      let known = allowedAt.get(at);
      if (!known) allowedAt.set(at, known = allowedKeys(value, path));
      for (const k of issue.keys) {
        const at = { file, ...loc.locate([...path, k], true), path: pathToString([...path, k]) };
        if (!showableKey(k)) {
          // Likely "name:value" or "name value" (a missing space after the colon): the part after
          // the name may be a secret, so only the name is used, for the suggestion.
          const head = /^[^\s:]*/.exec(k)![0];
          const near = known.find((c) => c === head) ?? nearest(head, known);
          out.push({ ...at, message: `unknown key (not shown: it holds a ':', a space or a quote, or is long)${near ? `; is a space missing after "${near}:"?` : ""}` });
          continue;
        }
        const near = nearest(k, known);
        out.push({ ...at, message: `unknown key "${k}"${near ? ` (did you mean "${near}"?)` : known.length ? ` (allowed: ${known.join(", ")})` : ""}` });
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
    if ((issue.code === "invalid_union" || issue.code === "invalid_format") && last === "validUntil") {
      message = "expected epoch milliseconds or an ISO 8601 date-time with offset (e.g. 2027-01-31T00:00:00Z)";
    }
    const here = present ? (holder as Record<string | number, unknown>)[last as never] : undefined;
    // zod's own messages never quote the input; a custom one may come from a validator elsewhere.
    out.push({ file, ...loc.locate(path), path: pathToString(path), message: issue.code === "custom" ? withoutValue(message, here) : message });
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
