// docs/architecture.md (runtime boundary): only src/runtime and src/bin may use a runtime's globals; everything else is written
// against Web standards and node:* so Bun and Deno run the same files.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const src = join(import.meta.dir, "../../src");

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (p.endsWith(".ts")) yield p;
  }
}

test("Bun. and Deno. appear only in src/runtime and src/bin", () => {
  const offenders: string[] = [];
  for (const file of files(src)) {
    const rel = relative(src, file);
    if (rel.startsWith("runtime/") || rel.startsWith("bin/")) continue;
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, i) => {
        // Code use (Bun.serve, Deno.env, import from "bun") — comments may name the runtimes.
        const code = line.replace(/\/\/.*$/, "").replace(/^\s*\*.*$/, "");
        if (/\b(Bun|Deno)\s*[.[]|from\s+["'](bun|bun:[a-z]+)["']/.test(code)) offenders.push(`src/${rel}:${i + 1}: ${line.trim()}`);
      });
  }
  expect(offenders).toEqual([]);
});

test("the check itself catches a runtime global", () => {
  const code = "const s = Bun.serve({});";
  expect(/\b(Bun|Deno)\s*[.[]/.test(code)).toBe(true);
});
