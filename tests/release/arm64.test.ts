// The linux-arm64 release binary, built here by scripts/release.sh exactly as `npm run release`
// builds it, run under qemu-user-static: --version, check, and a real proxied call (plus a
// reload parsed by the embedded worker). Skipped with a notice without qemu-aarch64-static and
// the arm64 glibc (Debian: qemu-user-static, libc6-arm64-cross; .ci/run installs both).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { buildRelease, PKG_VERSION, ROOT, run, shortCommit, startGateway } from "./lib.ts";

const QEMU = Bun.which("qemu-aarch64-static");
const SYSROOT = "/usr/aarch64-linux-gnu";
const available = QEMU !== null && existsSync(join(SYSROOT, "lib/ld-linux-aarch64.so.1"));
if (!available) console.warn("SKIP: the linux-arm64 binary test needs qemu-aarch64-static and the arm64 glibc (apt-get install -y qemu-user-static libc6-arm64-cross)");

// Emulated, the binary takes seconds to start: every wait below is generous, and bounded.
const SLOW = 120_000;

describe.skipIf(!available)("linux-arm64 release binary under qemu", () => {
  let dir: string;
  let bin: string;
  let buildDay: string[];
  const qemu = (...args: string[]) => [QEMU!, "-L", SYSROOT, bin, ...args];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "oto-arm64-"));
    const before = new Date().toISOString().slice(0, 10);
    bin = await buildRelease(join(dir, "release"), "linux-arm64");
    buildDay = [before, new Date().toISOString().slice(0, 10)];
  }, 300_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("is an aarch64 ELF that matches its SHA256SUMS line and holds no path of this machine", () => {
    const bytes = readFileSync(bin);
    expect([...bytes.subarray(0, 4)]).toEqual([0x7f, 0x45, 0x4c, 0x46]); // ELF
    expect(bytes.readUInt16LE(18)).toBe(183); // e_machine: EM_AARCH64
    const sums = readFileSync(join(dir, "release/SHA256SUMS"), "utf8");
    expect(sums).toBe(`${createHash("sha256").update(bytes).digest("hex")}  otoroshi-lite-linux-arm64\n`);
    expect(bytes.includes(Buffer.from(ROOT))).toBe(false);
    // The reload worker is an entry point of the build, in Bun's embedded file system.
    expect(bytes.includes(Buffer.from("config/reload-worker.js"))).toBe(true);
  });

  test("--version names the version, linux-arm64, the commit, the build date and Bun", async () => {
    const r = await run(qemu("--version"), { timeoutMs: SLOW });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const m = /^otoroshi-lite (\S+) \(linux-arm64, (\S+), (\d{4}-\d{2}-\d{2}), bun (\d+\.\d+\.\d+)\)\n$/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(m![1]).toBe(PKG_VERSION);
    expect(m![2]).toBe(await shortCommit());
    expect(buildDay).toContain(m![3]);
    expect(m![4]).toBe(Bun.version);
  }, SLOW);

  test("check accepts the bundled otoroshi.yaml and reports each problem of a broken file at file:line:col", async () => {
    const ok = await run(qemu("check", "--config", "otoroshi.yaml"), { timeoutMs: SLOW });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain("otoroshi.yaml: OK (1 routes");
    const bad = await run(qemu("check", "--config", "tests/fixtures/configs/invalid/unknown-keys.yaml"), { timeoutMs: SLOW });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown-keys.yaml:2:3 server.prot: unknown key "prot" (did you mean "port"?)');
  }, 2 * SLOW);

  test("proxies a real call to a local backend, and applies an edit parsed by the embedded worker", async () => {
    let backend: EchoBackend | undefined;
    let gw: Awaited<ReturnType<typeof startGateway>> | undefined;
    try {
      const echo = (backend = await startEchoBackend());
      const file = join(dir, "otoroshi.yaml");
      const config = (root: string) =>
        `server:\n  host: 127.0.0.1\n  stateDir: ${
          join(dir, "state")
        }\nroutes:\n  - id: arm\n    frontend: { domains: [arm.test] }\n    backend:\n      root: ${root}\n      targets: [{ hostname: 127.0.0.1, port: ${echo.port} }]\n`;
      writeFileSync(file, config("/v1"));
      // QEMU_LD_PREFIX: where binfmt_misc runs arm64 programs through qemu, the gateway's
      // re-exec of itself (src/bin/bun.ts) finds the arm64 libraries too.
      gw = await startGateway([QEMU!, "-L", SYSROOT, bin], file, { startTimeoutMs: SLOW, env: { QEMU_LD_PREFIX: SYSROOT } });

      const body = "hello from an emulated arm64 gateway";
      const res = await fetch(`${gw.url}/orders/42?x=1`, { method: "POST", headers: { host: "arm.test" }, body, signal: AbortSignal.timeout(SLOW) });
      expect(res.status).toBe(200);
      const seen = (await res.json()) as EchoBody;
      expect(seen.method).toBe("POST");
      expect(seen.path).toBe("/v1/orders/42");
      expect(seen.query).toBe("?x=1");
      expect(seen.bodySha256).toBe(createHash("sha256").update(body).digest("hex"));

      writeFileSync(file, config("/v2"));
      const reloaded = await gw.waitForLog((l) => l.event === "config.reloaded" && l.generation === 2, SLOW);
      expect(reloaded.parser).toBe("worker");
      const after = await fetch(`${gw.url}/orders/42`, { headers: { host: "arm.test" }, signal: AbortSignal.timeout(SLOW) });
      expect(((await after.json()) as EchoBody).path).toBe("/v2/orders/42");
    } finally {
      if (gw) expect(await gw.stop()).toBe(0);
      await backend?.stop();
    }
  }, 4 * SLOW);
});
