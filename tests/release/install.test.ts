// packaging/install.sh, run by dash (a strict POSIX sh) against a real HTTP server on 127.0.0.1
// serving a dist/release-like directory. Small stand-in files with their real SHA256SUMS keep
// it fast; one case installs the real binary of this machine when `npm run build` made it.
// Other machines are simulated with `uname` and `ldd` shims put first in PATH.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { HOST_BINARY, PKG_VERSION, ROOT, run } from "./lib.ts";

const INSTALL_SH = join(ROOT, "packaging/install.sh");
const DASH = Bun.which("dash");
if (!DASH) console.warn("SKIP: the installer tests run it under dash (apt-get install -y dash)");

const NAMES = ["linux-x64", "linux-arm64", "linux-x64-musl", "linux-arm64-musl", "darwin-x64", "darwin-arm64", "windows-x64"].map((p) => `otoroshi-lite-${p}${p.startsWith("windows") ? ".exe" : ""}`);
const sha256 = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");
/** A stand-in release file: a script that names itself, so the installer's `--version` runs. */
const fake = (name: string) => `#!/bin/sh\necho "stand-in ${name} $*"\n`;

let work: string;
let server: ReturnType<typeof Bun.serve>;
const requests: string[] = [];
let n = 0;

/** A release directory served at http://127.0.0.1:PORT/<dir name>/. */
function releaseDir(files: Record<string, string | Buffer>, sums: Record<string, string | Buffer> = files): string {
  const dir = join(work, "releases", `r${++n}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  writeFileSync(join(dir, "SHA256SUMS"), Object.entries(sums).map(([name, c]) => `${sha256(c)}  ${name}\n`).join(""));
  return dir;
}

const allFakes = () => Object.fromEntries(NAMES.map((name) => [name, fake(name)]));

/** PATH shims: `uname -s`/`uname -m` and `ldd --version` answer as the simulated machine. */
function shims(os: string, cpu: string, ldd?: string): string {
  const dir = join(work, "shims", `s${++n}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "uname"), `#!/bin/sh\ncase "$1" in -s) echo '${os}' ;; -m) echo '${cpu}' ;; *) echo '${os}' ;; esac\n`);
  chmodSync(join(dir, "uname"), 0o755);
  if (ldd !== undefined) {
    writeFileSync(join(dir, "ldd"), `#!/bin/sh\necho '${ldd}' >&2\nexit 1\n`);
    chmodSync(join(dir, "ldd"), 0o755);
  }
  return dir;
}

interface Install {
  code: number;
  stdout: string;
  stderr: string;
  installDir: string;
  installed: string[];
  tmpLeft: string[];
  requested: string[];
}

async function install(release: string, opts: { path?: string; installDir?: string } = {}): Promise<Install> {
  const installDir = opts.installDir ?? join(work, "bin", `b${++n}`);
  const tmp = join(work, "tmp", `t${++n}`);
  mkdirSync(tmp, { recursive: true });
  const from = requests.length;
  const r = await run([DASH!, INSTALL_SH], {
    env: {
      PATH: opts.path ?? process.env.PATH,
      HOME: work,
      TMPDIR: tmp,
      OTOROSHI_RELEASE_URL: `http://127.0.0.1:${server.port}/${basename(release)}`,
      OTOROSHI_INSTALL_DIR: installDir,
    },
    timeoutMs: 60_000,
  });
  return {
    ...r,
    installDir,
    installed: existsSync(installDir) ? readdirSync(installDir).sort() : [],
    tmpLeft: readdirSync(tmp),
    requested: requests.slice(from),
  };
}

/** This machine's release name, as the installer should pick it. */
async function hostName(): Promise<string> {
  const os = { linux: "linux", darwin: "darwin", win32: "windows" }[process.platform as string];
  const cpu = { x64: "x64", arm64: "arm64" }[process.arch as string];
  const ldd = await run(["sh", "-c", "ldd --version 2>&1 || true"], { timeoutMs: 10_000 });
  const musl = os === "linux" && /musl/i.test(ldd.stdout);
  return `otoroshi-lite-${os}-${cpu}${musl ? "-musl" : ""}${os === "windows" ? ".exe" : ""}`;
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "oto-install-"));
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      requests.push(path);
      const [, dir, name, extra] = path.split("/");
      const file = join(work, "releases", dir ?? "", name ?? "");
      if (!dir || !name || extra !== undefined || !existsSync(file)) return new Response("not found", { status: 404 });
      return new Response(Bun.file(file));
    },
  });
});
afterAll(async () => {
  await server?.stop(true);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!DASH)("packaging/install.sh", () => {
  test("installs this machine's binary, checked against SHA256SUMS, into OTOROSHI_INSTALL_DIR", async () => {
    const name = await hostName();
    const r = await install(releaseDir(allFakes()));
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.requested.map((p) => basename(p))).toEqual(["SHA256SUMS", name]);
    const target = name.endsWith(".exe") ? "otoroshi-lite.exe" : "otoroshi-lite";
    expect(r.installed).toEqual([target]);
    expect(readFileSync(join(r.installDir, target), "utf8")).toBe(fake(name));
    expect(statSync(join(r.installDir, target)).mode & 0o777).toBe(0o755);
    expect(r.stdout).toContain(`checksum OK (${sha256(fake(name))})`);
    expect(r.stdout).toContain(`stand-in ${name} --version`);
    expect(r.stdout).toContain("Next steps:");
    expect(r.tmpLeft).toEqual([]);
  });

  // Every platform the installer knows, from what `uname` and `ldd` say.
  const machines: [string, string, string | undefined, string, string][] = [
    ["Linux", "x86_64", "ldd (Debian GLIBC 2.36-9) 2.36", "otoroshi-lite-linux-x64", "otoroshi-lite"],
    ["Linux", "amd64", "ldd (GNU libc) 2.39", "otoroshi-lite-linux-x64", "otoroshi-lite"],
    ["Linux", "aarch64", "ldd (Ubuntu GLIBC 2.39-0ubuntu8) 2.39", "otoroshi-lite-linux-arm64", "otoroshi-lite"],
    ["Linux", "x86_64", "musl libc (x86_64)\nVersion 1.2.5", "otoroshi-lite-linux-x64-musl", "otoroshi-lite"],
    ["Linux", "aarch64", "musl libc (aarch64)\nVersion 1.2.5", "otoroshi-lite-linux-arm64-musl", "otoroshi-lite"],
    ["Darwin", "x86_64", undefined, "otoroshi-lite-darwin-x64", "otoroshi-lite"],
    ["Darwin", "arm64", undefined, "otoroshi-lite-darwin-arm64", "otoroshi-lite"],
    ["MINGW64_NT-10.0-19045", "x86_64", undefined, "otoroshi-lite-windows-x64.exe", "otoroshi-lite.exe"],
  ];
  const cases = machines.map(([os, cpu, ldd, name, target]) => [`${os} ${cpu}${ldd ? (/musl/.test(ldd) ? " musl" : " glibc") : ""}`, name, os, cpu, ldd, target] as const);
  test.each(cases)("%s gets %s", async (_label, name, os, cpu, ldd, target) => {
    const path = `${shims(os, cpu, ldd)}:${process.env.PATH}`;
    const r = await install(releaseDir(allFakes()), { path });
    expect(r.code).toBe(0);
    expect(r.requested.map((p) => basename(p))).toEqual(["SHA256SUMS", name]);
    expect(r.installed).toEqual([target]);
    expect(readFileSync(join(r.installDir, target), "utf8")).toBe(fake(name));
  });

  test("a corrupted binary is refused: nothing installed, the earlier install kept, no temp files left", async () => {
    const name = await hostName();
    const files = allFakes();
    const release = releaseDir({ ...files, [name]: files[name].replace("stand-in", "tampered") }, files);
    const installDir = join(work, "bin", "kept");
    mkdirSync(installDir, { recursive: true });
    writeFileSync(join(installDir, "otoroshi-lite"), "the earlier install\n");
    const r = await install(release, { installDir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`checksum mismatch for ${name}`);
    expect(r.stderr).toContain("nothing installed");
    expect(r.installed).toEqual(["otoroshi-lite"]);
    expect(readFileSync(join(installDir, "otoroshi-lite"), "utf8")).toBe("the earlier install\n");
    expect(r.tmpLeft).toEqual([]);
  });

  test("a SHA256SUMS without this machine's file is refused, nothing installed", async () => {
    const name = await hostName();
    const files = allFakes();
    const { [name]: _, ...others } = files;
    const r = await install(releaseDir(files, others));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`SHA256SUMS has no line for ${name}; nothing installed`);
    expect(r.installed).toEqual([]);
  });

  test("a missing release file is refused, nothing installed", async () => {
    const name = await hostName();
    const { [name]: _, ...others } = allFakes();
    const r = await install(releaseDir(others, allFakes()));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`cannot download http://127.0.0.1:${server.port}/`);
    expect(r.installed).toEqual([]);
    expect(r.tmpLeft).toEqual([]);
  });

  test("an install directory that cannot be created is refused with a hint, no temp files left", async () => {
    writeFileSync(join(work, "a-file"), "");
    const r = await install(releaseDir(allFakes()), { installDir: join(work, "a-file", "bin") });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot create ${join(work, "a-file", "bin")} (run as root, or set OTOROSHI_INSTALL_DIR)`);
    expect(r.tmpLeft).toEqual([]);
  });

  test.each([
    ["SunOS", "i86pc", 'no release for the operating system "SunOS"'],
    ["FreeBSD", "amd64", 'no release for the operating system "FreeBSD"'],
    ["Linux", "riscv64", 'no release for the CPU "riscv64"'],
    ["Linux", "armv7l", 'no release for the CPU "armv7l"'],
    ["MINGW64_NT-10.0", "aarch64", "no release for Windows on"],
  ])("an unknown platform (%s %s) is refused before any download", async (os, cpu, message) => {
    const r = await install(releaseDir(allFakes()), { path: `${shims(os, cpu, "ldd (GNU libc) 2.36")}:${process.env.PATH}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe("");
    expect(r.requested).toEqual([]);
    expect(r.installed).toEqual([]);
  });

  // Only wget and shasum (macOS has shasum, busybox systems often only wget): a PATH holding
  // nothing but the tools the script may use also proves it needs no others.
  const wget = Bun.which("wget");
  const shasum = Bun.which("shasum");
  if (!wget || !shasum) console.warn("SKIP: the installer's wget/shasum path needs wget and shasum (apt-get install -y wget perl)");
  test.skipIf(!wget || !shasum)("works with wget and shasum alone (no curl, no sha256sum)", async () => {
    const dir = join(work, "minimal-path");
    mkdirSync(dir, { recursive: true });
    for (const tool of ["uname", "ldd", "grep", "mktemp", "rm", "cut", "awk", "tr", "mkdir", "cp", "chmod", "mv", "wget", "shasum"]) {
      const at = Bun.which(tool);
      if (!at) throw new Error(`${tool} is not installed`);
      symlinkSync(at, join(dir, tool));
    }
    const name = await hostName();
    const r = await install(releaseDir(allFakes()), { path: dir });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readFileSync(join(r.installDir, "otoroshi-lite"), "utf8")).toBe(fake(name));
    expect(r.tmpLeft).toEqual([]);
  });

  const real = existsSync(HOST_BINARY);
  if (!real) console.warn(`SKIP: installing the real binary needs ${HOST_BINARY} (npm run build)`);
  test.skipIf(!real)("installs the real binary, which then prints its version", async () => {
    const name = await hostName();
    const dir = join(work, "releases", "real");
    mkdirSync(dir, { recursive: true });
    symlinkSync(HOST_BINARY, join(dir, name));
    writeFileSync(join(dir, "SHA256SUMS"), `${sha256(readFileSync(HOST_BINARY))}  ${name}\n`);
    const r = await install(dir);
    expect(r.code).toBe(0);
    const platform = name.replace(/^otoroshi-lite-/, "").replace(/\.exe$/, "");
    expect(r.stdout).toContain(`otoroshi-lite ${PKG_VERSION} (${platform}, `);
    const v = await run([join(r.installDir, "otoroshi-lite"), "--version"], { timeoutMs: 30_000 });
    expect(v.stdout.startsWith(`otoroshi-lite ${PKG_VERSION} (${platform}, `)).toBe(true);
  }, 60_000);
});
