// `--version`: `otoroshi-lite <version> (<platform>, <commit>, <date>, <runtime> <version>)`.
// A build stamps the platform, commit and date (scripts/release.sh, --define); from the sources
// the platform is the running runtime's and the commit and date are "dev".
import { describe, expect, test } from "bun:test";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { HOST_BINARY, PKG_VERSION, ROOT, run, shortCommit } from "./lib.ts";

const os = process.platform === "win32" ? "windows" : process.platform;
const ldd = await run(["sh", "-c", "ldd --version 2>&1 || true"], { timeoutMs: 10_000 });
const platform = `${os}-${process.arch}${os === "linux" && /musl/i.test(ldd.stdout) ? "-musl" : ""}`;

describe("--version", () => {
  test("from the sources on Bun: this platform, dev, dev", async () => {
    const r = await run([join(ROOT, "node_modules/.bin/bun"), "src/bin/bun.ts", "--version"], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`otoroshi-lite ${PKG_VERSION} (${platform}, dev, dev, bun ${Bun.version})\n`);
  });

  test("from the sources on Deno: this platform, dev, dev", async () => {
    const deno = join(ROOT, "node_modules/.bin/deno");
    const r = await run([deno, "run", "--quiet", "--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", "src/bin/deno.ts", "--version"], { timeoutMs: 60_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^otoroshi-lite ${PKG_VERSION.replaceAll(".", "\\.")} \\(${platform}, dev, dev, deno \\d+\\.\\d+\\.\\d+\\)\\n$`));
  });

  test.skipIf(!existsSync(HOST_BINARY))("the built binary: this platform, the commit and the day it was built", async () => {
    const r = await run([HOST_BINARY, "--version"], { timeoutMs: 30_000 });
    expect(r.code).toBe(0);
    // Stamped when the build started, a few seconds before the file was written (maybe across midnight UTC).
    const written = statSync(HOST_BINARY).mtime.getTime();
    const built = `(${new Date(written).toISOString().slice(0, 10)}|${new Date(written - 60_000).toISOString().slice(0, 10)})`;
    // The commit is the one checked out when it was built: only its shape is known here.
    const commit = (await shortCommit()) === "unknown" ? "unknown" : "[0-9a-f]{7}";
    expect(r.stdout).toMatch(new RegExp(`^otoroshi-lite ${PKG_VERSION.replaceAll(".", "\\.")} \\(${platform}, ${commit}, ${built}, bun ${Bun.version.replaceAll(".", "\\.")}\\)\\n$`));
  });
});
