// ${env:NAME} and ${file:path} substitution in the parsed YAML, before validation.
// A failed reference is reported at the reference itself (its column inside the value when the
// value is written on one line) and never names it: a value with "${" in it may be a secret.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { type Document, isMap, isPair, isScalar, isSeq } from "yaml";
import type { ConfigProblem } from "../errors.ts";
import { type Locator, pathToString } from "./yaml.ts";

export interface ParseEnv {
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a file referenced by ${file:…}; default: fs. */
  readFile?: (path: string) => string;
}

const SUBST = /\$\{(env|file):([^}]*)\}|\$\$\{/g;

export function substituteAll(doc: Document, text: string, file: string, penv: ParseEnv, problems: ConfigProblem[], files: Set<string>, loc: Locator): void {
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
      const range = node.range;
      const source = range ? text.slice(range[0], range[1]) : "";
      const seen = new Map<string, number>();
      node.value = original.replace(SUBST, (whole: string, kind: string | undefined, arg: string | undefined) => {
        if (!kind) return "${"; // "$${" escapes a literal "${"
        // The n-th occurrence of this reference in the value is the n-th in the source text
        // when the value is written as is (plain, single-quoted, most double-quoted values).
        const n = seen.get(whole) ?? 0;
        seen.set(whole, n + 1);
        let idx = -1;
        for (let k = 0; k <= n; k++) idx = source.indexOf(whole, idx + 1);
        const at = range && idx >= 0 ? loc.at(range[0] + idx) : loc.locate(here);
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
          return v === undefined ? problem("the environment variable this ${env:…} reference names is not set") : v;
        }
        const abs = isAbsolute(ref) ? ref : resolve(baseDir, ref);
        files.add(abs);
        try {
          const content = read(abs);
          // One trailing newline is an artefact of editors and `echo`, not part of the secret.
          return content.endsWith("\r\n") ? content.slice(0, -2) : content.endsWith("\n") ? content.slice(0, -1) : content;
        } catch (e) {
          const code = (e as { code?: string }).code;
          const safeCode = code && /^E[A-Z]+$/.test(code) ? ` (${code})` : "";
          return problem(`cannot read the file this \${file:…} reference names${safeCode}${isAbsolute(ref) ? "" : "; relative paths start at the config file's directory"}`);
        }
      });
    }
  };
  visit(doc.contents);
}
