// Golden files for config errors: tests/fixtures/configs/invalid/<case>.yaml must produce
// exactly <case>.expected.txt (one `file:line:col path: message` per line; a config that loads
// gives "(no error)" and its warnings).
// UPDATE_GOLDEN=1 rewrites the expected files.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSnapshot } from "../../../src/config/load.ts";
import { ConfigError, formatProblem } from "../../../src/errors.ts";
import { bunUpstream } from "../../helpers/gateway.ts";

const dir = join(import.meta.dir, "../../fixtures/configs/invalid");
const cases = readdirSync(dir).filter((f) => f.endsWith(".yaml")).map((f) => f.slice(0, -5));

describe("golden config errors", () => {
  for (const name of cases) {
    test(`${name}.yaml reports every problem with file:line:col`, () => {
      const stateDir = mkdtempSync(join(tmpdir(), "oto-golden-"));
      let output = "";
      try {
        // Relative file name so the expected text does not depend on where the repo lives.
        const prev = process.cwd();
        process.chdir(dir);
        try {
          const { parsed } = loadSnapshot(`${name}.yaml`, 1, { env: {}, clock: () => 0, upstreamFetch: bunUpstream, stateDir, dryRun: true });
          output = ["(no error)", ...parsed.warnings.map((w) => `warning: ${formatProblem(w)}`)].join("\n");
        } finally {
          process.chdir(prev);
        }
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        output = e.problems.map(formatProblem).join("\n");
      } finally {
        rmSync(stateDir, { recursive: true, force: true });
      }
      const expectedFile = join(dir, `${name}.expected.txt`);
      if (process.env.UPDATE_GOLDEN) writeFileSync(expectedFile, output + "\n");
      expect(output + "\n").toBe(readFileSync(expectedFile, "utf8"));
    });
  }
});
