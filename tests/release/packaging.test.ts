// The packaging files, checked with the tools that judge them: shellcheck (and dash) for the
// shell scripts, `systemd-analyze verify` for the unit, and for the Dockerfile (no Docker engine
// here) its structure, its binary-picking step and its HEALTHCHECK command run for real against
// a gateway started from the bundled config. Each tool-based check skips with a notice without
// its tool.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HOST_BINARY, ROOT, run, startGateway } from "./lib.ts";

const SHELLCHECK = Bun.which("shellcheck");
const DASH = Bun.which("dash");
const CHECKBASHISMS = Bun.which("checkbashisms");
const SYSTEMD_ANALYZE = Bun.which("systemd-analyze");
const HAVE_BINARY = existsSync(HOST_BINARY);
if (!SHELLCHECK) console.warn("SKIP: shellcheck of the scripts needs shellcheck (apt-get install -y shellcheck)");
if (!DASH) console.warn("SKIP: the POSIX syntax check of install.sh needs dash (apt-get install -y dash)");
if (!CHECKBASHISMS) console.warn("SKIP: checkbashisms (Debian devscripts) is absent; shellcheck -s sh and dash check install.sh instead");
if (!SYSTEMD_ANALYZE) console.warn("SKIP: the service unit check needs systemd-analyze (apt-get install -y systemd)");
if (!HAVE_BINARY) console.warn(`SKIP: the bundled config and HEALTHCHECK runs need ${HOST_BINARY} (npm run build)`);

const RELEASE_NAMES = ["linux-x64", "linux-arm64", "linux-x64-musl", "linux-arm64-musl", "darwin-x64", "darwin-arm64", "windows-x64"].map((p) =>
  `otoroshi-lite-${p}${p.startsWith("windows") ? ".exe" : ""}`
);
const UNIT = readFileSync(join(ROOT, "packaging/otoroshi-lite.service"), "utf8");
const CONFIG = join(ROOT, "packaging/otoroshi.yaml");

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "oto-packaging-"));
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("shell scripts", () => {
  const bashScripts = [...readdirSync(join(ROOT, "scripts")).filter((f) => f.endsWith(".sh")).map((f) => `scripts/${f}`), ".ci/run", "examples/client-credentials.sh"];

  test.skipIf(!SHELLCHECK)("packaging/install.sh passes shellcheck as POSIX sh", async () => {
    const r = await run([SHELLCHECK!, "--shell=sh", "packaging/install.sh"], { timeoutMs: 60_000 });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  test.skipIf(!SHELLCHECK)("scripts/*.sh, .ci/run and the example pass shellcheck", async () => {
    const r = await run([SHELLCHECK!, ...bashScripts], { timeoutMs: 60_000 });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  test.skipIf(!DASH)("install.sh parses under dash and sh -n", async () => {
    expect((await run([DASH!, "-n", "packaging/install.sh"])).code).toBe(0);
    expect((await run(["sh", "-n", "packaging/install.sh"])).code).toBe(0);
  });

  test.skipIf(!CHECKBASHISMS)("install.sh has no bashisms (checkbashisms)", async () => {
    const r = await run([CHECKBASHISMS!, "packaging/install.sh"]);
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});

describe("packaging/otoroshi-lite.service", () => {
  /** The unit with ExecStart pointing at `binary`: verify checks the program exists. */
  async function verify(unitText: string, binary: string): Promise<string> {
    const dir = mkdtempSync(join(work, "unit-"));
    const file = join(dir, "otoroshi-lite.service");
    writeFileSync(file, unitText.replaceAll("/usr/local/bin/otoroshi-lite", binary));
    const r = await run([SYSTEMD_ANALYZE!, "verify", file], { timeoutMs: 60_000 });
    return `${r.code === 0 ? "" : `exit ${r.code}\n`}${r.stdout}${r.stderr}`;
  }
  const binary = HAVE_BINARY ? HOST_BINARY : "/bin/true";

  test.skipIf(!SYSTEMD_ANALYZE)("passes systemd-analyze verify with no output", async () => {
    expect(await verify(UNIT, binary)).toBe("");
  });

  test.skipIf(!SYSTEMD_ANALYZE)("verify does report a misspelt setting (the check above can fail)", async () => {
    expect(await verify(UNIT.replace("ProtectSystem=strict", "ProtectSystm=strict"), binary)).toContain("Unknown key 'ProtectSystm'");
  });

  test("runs the binary on /etc/otoroshi-lite/otoroshi.yaml with the hardening the issue asks for", () => {
    const settings = UNIT.split("\n").filter((l) => /^[A-Za-z]+=/.test(l));
    for (
      const s of [
        "ExecStart=/usr/local/bin/otoroshi-lite --config /etc/otoroshi-lite/otoroshi.yaml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=otoroshi-lite",
        "ConfigurationDirectory=otoroshi-lite",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
      ]
    ) {
      expect(settings).toContain(s);
    }
    // No other capability is granted anywhere in the unit.
    expect(settings.filter((l) => /Capabilit/.test(l)).every((l) => l.endsWith("=CAP_NET_BIND_SERVICE"))).toBe(true);
  });
});

describe.skipIf(!HAVE_BINARY)("packaging/otoroshi.yaml (the service's and the image's config)", () => {
  test("is valid with STATE_DIRECTORY set, and names server.stateDir when it is not", async () => {
    const env = { ...process.env, STATE_DIRECTORY: join(work, "state") };
    const ok = await run([HOST_BINARY, "check", "--config", CONFIG], { env, timeoutMs: 60_000 });
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    const { STATE_DIRECTORY: _, ...without } = env;
    const bad = await run([HOST_BINARY, "check", "--config", CONFIG], { env: without, timeoutMs: 60_000 });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("packaging/otoroshi.yaml:9:13 server.stateDir: ");
  });
});

describe.skipIf(!HAVE_BINARY)("the built binary and its working directory", () => {
  // Bun's compiled programs read .env and bunfig.toml from the directory they start in unless
  // built with --no-compile-autoload-dotenv/-bunfig; a bunfig.toml preload would run its code.
  test("reads neither .env nor bunfig.toml from there", async () => {
    const dir = mkdtempSync(join(work, "cwd-"));
    const marker = join(dir, "preload-ran");
    writeFileSync(join(dir, "bunfig.toml"), 'preload = ["./preload.js"]\n');
    writeFileSync(join(dir, "preload.js"), `require("node:fs").writeFileSync(${JSON.stringify(marker)}, "ran");\n`);
    writeFileSync(join(dir, ".env"), "OTOROSHI_CONFIG=/nonexistent/otoroshi.yaml\n");
    writeFileSync(join(dir, "otoroshi.yaml"), "server:\n  port: 8080\n");
    const env = { ...process.env };
    delete env.OTOROSHI_CONFIG;
    const r = await run([HOST_BINARY, "check"], { cwd: dir, env, timeoutMs: 30_000 });
    expect(r.stdout).toContain(`${join(dir, "otoroshi.yaml")}: OK`);
    expect(r.code).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });
});

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(text: string): { op: string; args: string }[] {
  return text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(" ") };
    });
}

describe("packaging/Dockerfile", () => {
  const text = readFileSync(join(ROOT, "packaging/Dockerfile"), "utf8");
  const all = instructions(text);
  const finalStage = all.slice(all.findLastIndex((i) => i.op === "FROM"));
  const pickStage = all.slice(0, all.findLastIndex((i) => i.op === "FROM"));

  test("copies release files by their release names, and only what the .dockerignore lets in", () => {
    const ignore = readFileSync(join(ROOT, "packaging/Dockerfile.dockerignore"), "utf8").split("\n").filter((l) => l.startsWith("!")).map((l) => l.slice(1));
    const sources = all.filter((i) => i.op === "COPY" && !i.args.startsWith("--from")).flatMap((i) => i.args.split(" ").slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    const glob = (pattern: string) => new Bun.Glob(pattern);
    for (const src of sources) {
      const allowed = ignore.filter((name) => glob(src).match(name));
      expect({ src, allowed: allowed.length > 0 }).toEqual({ src, allowed: true });
      if (src.startsWith("dist/release/")) {
        // A release file name, and for the binaries exactly the two glibc Linux ones.
        const matching = [...RELEASE_NAMES, "SHA256SUMS"].filter((n) => glob(src.slice("dist/release/".length)).match(n));
        expect(matching.length).toBeGreaterThan(0);
        if (src.includes("otoroshi-lite-")) expect(matching.sort()).toEqual(["otoroshi-lite-linux-arm64", "otoroshi-lite-linux-x64"]);
      } else expect(existsSync(join(ROOT, src))).toBe(true);
    }
    expect(finalStage.some((i) => i.op === "COPY" && i.args === "packaging/otoroshi.yaml /etc/otoroshi-lite/otoroshi.yaml")).toBe(true);
    expect(finalStage.some((i) => i.op === "COPY" && i.args === "--from=pick /otoroshi-lite /usr/local/bin/otoroshi-lite")).toBe(true);
  });

  test("runs as a non-root user, with the state volume as STATE_DIRECTORY, on the bundled config", () => {
    expect(all.filter((i) => i.op === "FROM").map((i) => i.args)).toEqual(["debian:bookworm-slim AS pick", "debian:bookworm-slim"]);
    const user = finalStage.filter((i) => i.op === "USER").map((i) => i.args);
    expect(user.length).toBe(1);
    expect(user[0]).not.toMatch(/^(0|root)(:|$)/);
    expect(finalStage.find((i) => i.op === "VOLUME")?.args).toBe('["/var/lib/otoroshi-lite"]');
    expect(finalStage.find((i) => i.op === "ENV")?.args).toContain("STATE_DIRECTORY=/var/lib/otoroshi-lite");
    expect(finalStage.find((i) => i.op === "ENTRYPOINT")?.args).toBe('["/usr/local/bin/otoroshi-lite"]');
    expect(finalStage.find((i) => i.op === "CMD")?.args).toBe('["--config", "/etc/otoroshi-lite/otoroshi.yaml"]');
    expect(finalStage.some((i) => i.op === "HEALTHCHECK")).toBe(true);
  });

  test("the pick stage installs the binary of the target architecture only if it matches SHA256SUMS", async () => {
    const step = pickStage.find((i) => i.op === "RUN")!.args;
    const dir = mkdtempSync(join(work, "pick-"));
    const script = step.replace("cd /release", `cd ${dir}/release`).replace(/ \/otoroshi-lite$/, ` ${dir}/out`);
    expect(script).not.toBe(step);
    mkdirSync(join(dir, "release"));
    const bodies = { "otoroshi-lite-linux-x64": "x64 build\n", "otoroshi-lite-linux-arm64": "arm64 build\n" };
    const sums = Object.entries(bodies).map(([n, b]) => `${createHash("sha256").update(b).digest("hex")}  ${n}\n`).join("");
    writeFileSync(join(dir, "release/SHA256SUMS"), sums);
    const pick = async (arch: string) => {
      rmSync(join(dir, "out"), { force: true });
      for (const [n, b] of Object.entries(bodies)) writeFileSync(join(dir, "release", n), b);
      const r = await run(["sh", "-c", script], { env: { ...process.env, TARGETARCH: arch } });
      return { code: r.code, out: existsSync(join(dir, "out")) ? readFileSync(join(dir, "out"), "utf8") : null };
    };
    expect(await pick("amd64")).toEqual({ code: 0, out: "x64 build\n" });
    expect(await pick("arm64")).toEqual({ code: 0, out: "arm64 build\n" });
    expect((await pick("riscv64")).out).toBeNull();
    bodies["otoroshi-lite-linux-arm64"] = "tampered\n";
    const tampered = await pick("arm64");
    expect(tampered.code).not.toBe(0);
    expect(tampered.out).toBeNull();
  });

  test.skipIf(!HAVE_BINARY)("the binary needs no library beyond libc6, which debian-slim has", async () => {
    const r = await run(["ldd", HOST_BINARY]);
    const libs = r.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter(Boolean).map((p) => p.split("/").pop()!);
    expect(libs.filter((l) => !/^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|ld-linux-(x86-64|aarch64)\.so\.[12])$/.test(l))).toEqual([]);
  });

  test.skipIf(!HAVE_BINARY)("its HEALTHCHECK command succeeds against a running gateway and fails once it stops", async () => {
    const hc = all.find((i) => i.op === "HEALTHCHECK")!.args;
    const cmd = JSON.parse(hc.slice(hc.indexOf("CMD ") + 4)) as string[];
    expect(cmd.join(" ")).toContain("http://127.0.0.1:8080/.well-known/otoroshi/monitoring/ready");
    const state = join(work, "hc-state");
    mkdirSync(state);
    const gw = await startGateway([HOST_BINARY], CONFIG, { env: { STATE_DIRECTORY: state }, cwd: state });
    // The image listens on the bundled config's port 8080; here the gateway took a free one.
    const argv = cmd.map((a) => a.replace("/usr/local/bin/otoroshi-lite", HOST_BINARY).replace("127.0.0.1:8080", `127.0.0.1:${gw.port}`));
    let stopped = false;
    try {
      const up = await run(argv, { cwd: state, timeoutMs: 30_000 });
      expect(up.stdout + up.stderr).toBe("");
      expect(up.code).toBe(0);
      expect(await gw.stop()).toBe(0);
      stopped = true;
      expect((await run(argv, { cwd: state, timeoutMs: 30_000 })).code).toBe(1);
    } finally {
      if (!stopped) await gw.stop();
    }
  }, 60_000);
});
