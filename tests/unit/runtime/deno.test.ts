import { expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

// bun test cannot load Deno.*, so the Deno adapter is exercised by a script run under Deno.
const root = resolve(import.meta.dir, "../../..");
const deno = resolve(root, "node_modules/.bin/deno");

test.skipIf(!existsSync(deno))("deno adapter passes its smoke script (serve, SNI, upstreamFetch)", async () => {
  const proc = Bun.spawn([deno, "run", "-A", "tests/unit/runtime/deno-smoke.ts"], {
    cwd: root,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const timer = setTimeout(() => proc.kill(), 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (stdout.trim() !== "ok") console.error(stdout, stderr);
  expect(stdout.trim()).toBe("ok");
  expect(code).toBe(0);
}, 30_000);
