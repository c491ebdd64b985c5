// Docs that state behaviour are checked: every YAML example in README.md and docs/*.md is a
// config (or a slice of one) that loads, and the README's curl walk-through is the one the e2e
// suite runs (examples/client-credentials.sh). A doc that drifts from the code fails here.
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../../src/config/parse.ts";
import { ConfigError, formatProblem } from "../../src/errors.ts";

const root = join(import.meta.dir, "../..");
const docs = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

interface Block {
  file: string;
  line: number;
  info: string;
  text: string;
}

function blocks(file: string): Block[] {
  const lines = readFileSync(join(root, file), "utf8").split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)(.*)$/.exec(lines[i]);
    if (!open || open[1] === "") continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i].startsWith("```"); i++) body.push(lines[i]);
    out.push({ file, line: start + 1, info: (open[1] + open[2]).trim(), text: body.join("\n") + "\n" });
  }
  return out;
}

const all = docs.flatMap(blocks);
// A fragment that is not a whole config says so in its info string (```yaml fragment): it shows
// one key in isolation. Everything else must load as it is written.
const yamlBlocks = all.filter((b) => b.info === "yaml");

// Files and variables the examples name, so that ${env:…} and ${file:…} resolve.
const env = new Proxy({}, { get: (_t, name) => (typeof name === "string" ? `example-${name.toLowerCase()}` : undefined) }) as Record<string, string>;
const readFile = (p: string) => (p.endsWith(".pem") ? readFileSync(join(root, "tests/fixtures/keys", p.includes("cert") ? "localhost.cert.pem" : "ec-p256.key.pem"), "utf8") : "example");

describe("docs", () => {
  test("there are YAML examples to check", () => {
    expect(yamlBlocks.length).toBeGreaterThan(3);
  });

  for (const b of yamlBlocks) {
    test(`${b.file}:${b.line} loads as a config`, () => {
      try {
        parseConfig(b.text, `${b.file}:${b.line}`, { env, readFile });
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        throw new Error(e.problems.map(formatProblem).join("\n"));
      }
    });
  }

  test("every test docs/security.md names exists, with the test names it quotes", () => {
    const text = readFileSync(join(root, "docs/security.md"), "utf8");
    const rows = text.split("\n").filter((l) => l.startsWith("|") && l.includes("`tests/"));
    expect(rows.length).toBeGreaterThan(10);
    for (const row of rows) {
      const cell = row.split("|").at(-2) ?? "";
      // `tests/…file.ts` optionally followed by "quoted test name", …
      for (const m of cell.matchAll(/`(tests\/[^`]+?\.(?:ts|yaml))`((?: "[^"]+",?)*)/g)) {
        const file = join(root, m[1]);
        const source = readFileSync(file, "utf8");
        for (const q of m[2].matchAll(/"([^"]+?)(?:…)?"/g)) expect(`${m[1]}: ${source.includes(q[1].replace(/…$/, "")) ? "found" : "missing"} ${q[1]}`).toBe(`${m[1]}: found ${q[1]}`);
      }
    }
  });

  test("the README's curl walk-through is the one examples/client-credentials.sh runs (in e2e)", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const script = readFileSync(join(root, "examples/client-credentials.sh"), "utf8");
    const curls = [...readme.replaceAll("\\\n", " ").matchAll(/^curl .*$/gm)].map((m) => m[0]);
    expect(curls.length).toBeGreaterThan(2);
    for (const c of curls) {
      // The URL path and the Host header of each documented call must be in the script.
      const host = /-H 'Host: ([^']+)'/.exec(c)?.[1];
      const path = /http:\/\/127\.0\.0\.1:8080(\S*)/.exec(c)?.[1];
      expect(host && script.includes(host)).toBeTruthy();
      expect(path !== undefined && script.includes(path)).toBeTruthy();
    }
  });
});
