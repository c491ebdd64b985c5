// DESIGN §9: only src/runtime and src/bin may name a runtime; the proxy and net code are written
// against Web standards so both runtimes run the same files.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "../../../src");

test("src/proxy and src/net never mention a runtime by name", () => {
  const offenders: string[] = [];
  for (const dir of ["proxy", "net"]) {
    for (const file of readdirSync(join(root, dir)).filter((f) => f.endsWith(".ts"))) {
      const text = readFileSync(join(root, dir, file), "utf8");
      text.split("\n").forEach((line, i) => {
        if (/\b(Bun|Deno)\b/i.test(line)) offenders.push(`src/${dir}/${file}:${i + 1}: ${line.trim()}`);
      });
    }
  }
  expect(offenders).toEqual([]);
});
