// Differential test (issue 8, item 8): `check` accepts a config exactly when the gateway starts
// on it. Both run as real processes on the sources (Bun): `check --config F`, then a start on F
// that either exits before listening or logs server.listening (then it is stopped by its PID).
// The configs: every golden invalid config, the start-time cases the issue found (server.store
// URLs, a state directory that cannot be written, two listeners on one port) and valid ones.
import { afterAll, describe, expect, test } from "bun:test";
import { spawn } from "bun";
import { copyFileSync, cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../../..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const GOLDEN = join(ROOT, "tests/fixtures/configs/invalid");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function check(file: string): Promise<{ code: number; stderr: string }> {
  const proc = spawn([BUN, join(ROOT, "src/bin/bun.ts"), "check", "--config", file], { cwd: ROOT, stdout: "ignore", stderr: "pipe", env: { ...process.env } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stderr };
}

/** True when the gateway started listening on `file` (it is then stopped), false when it exited first. */
async function starts(file: string, args: string[]): Promise<{ started: boolean; stderr: string }> {
  const proc = spawn([BUN, join(ROOT, "src/bin/bun.ts"), "--config", file, ...args], { cwd: ROOT, stdout: "ignore", stderr: "pipe", env: { ...process.env, OTOROSHI_LOG_LEVEL: "info" } });
  let stderr = "";
  let started = false;
  const reader = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr as unknown as AsyncIterable<Uint8Array>) {
      stderr += decoder.decode(chunk, { stream: true });
      if (!started && /"event":"server\.listening"/.test(stderr)) {
        started = true;
        proc.kill("SIGTERM");
      }
    }
  })();
  const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  await proc.exited;
  clearTimeout(timer);
  await reader;
  return { started, stderr };
}

function dirWith(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), "oto-check-start-"));
  dirs.push(d);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(d, name), content);
  return d;
}

const route = "routes:\n  - id: r\n    frontend: { domains: [a.test] }\n    backend: { targets: [{ hostname: 127.0.0.1, port: 9 }] }\n";
const ccs = "plugins:\n  - plugin: ClientCredentialService\n    config: { domain: oauth.test, issuer: 'https://oauth.test', secure: false }\n";

interface Case {
  name: string;
  dir: string;
  /** Extra start arguments (port 0 unless the case is about ports). */
  args: string[];
}

async function cases(): Promise<Case[]> {
  const out: Case[] = [];
  // Copies, as laid out in the repository (run-time.yaml reads ../../keys/*.pem): a config that
  // starts may write its generated key pair beside itself.
  const copy = mkdtempSync(join(tmpdir(), "oto-check-start-"));
  dirs.push(copy);
  cpSync(GOLDEN, join(copy, "configs/invalid"), { recursive: true });
  cpSync(join(ROOT, "tests/fixtures/keys"), join(copy, "keys"), { recursive: true });
  for (const f of readdirSync(GOLDEN).filter((n) => n.endsWith(".yaml"))) {
    out.push({ name: `golden ${f}`, dir: join(copy, "configs/invalid"), args: ["--port", "0"], file: f } as Case & { file: string });
  }
  const p = await freePort();
  const made: [string, Record<string, string>, string[]][] = [
    ["a valid config", { "otoroshi.yaml": route }, ["--port", "0"]],
    ["a valid config with a Redis store URL", { "otoroshi.yaml": `server:\n  store: redis://127.0.0.1:6399/0\n${route}` }, ["--port", "0"]],
    ["server.store with port 99999", { "otoroshi.yaml": `server:\n  store: redis://127.0.0.1:99999/0\n${route}` }, ["--port", "0"]],
    ["server.store with an unclosed bracket", { "otoroshi.yaml": `server:\n  store: "redis://[bad/0"\n${route}` }, ["--port", "0"]],
    ["server.store with a malformed %-escape in the password", { "otoroshi.yaml": `server:\n  store: "redis://:%E0%A4%A@h:6379"\n${route}` }, ["--port", "0"]],
    ["server.stateDir that is a file, with a generated signing key", { "otoroshi.yaml": `server:\n  stateDir: ./not-a-dir\n${ccs}${route}`, "not-a-dir": "x" }, ["--port", "0"]],
    ["server.stateDir under a file", { "otoroshi.yaml": `server:\n  stateDir: ./not-a-dir/state\n${ccs}${route}`, "not-a-dir": "x" }, ["--port", "0"]],
    ["a state directory to create", { "otoroshi.yaml": `server:\n  stateDir: ./state/deeper\n${ccs}${route}` }, ["--port", "0"]],
    ["server.host with a port", { "otoroshi.yaml": `server:\n  host: 127.0.0.1:8080\n${route}` }, ["--port", "0"]],
    ["HTTPS on the HTTP port", {
      "otoroshi.yaml":
        `server:\n  port: ${p}\n  host: 127.0.0.1\n  https: { port: ${p}, keyPairs: [tls] }\n${route}keypairs:\n  - id: tls\n    privateKey: \${file:key.pem}\n    certificate: \${file:cert.pem}\n`,
    }, []],
    ["HTTPS on its own port", {
      "otoroshi.yaml":
        `server:\n  port: ${p}\n  host: 127.0.0.1\n  https: { port: 0, keyPairs: [tls] }\n${route}keypairs:\n  - id: tls\n    privateKey: \${file:key.pem}\n    certificate: \${file:cert.pem}\n`,
    }, []],
  ];
  for (const [name, files, args] of made) {
    const dir = dirWith(files);
    copyFileSync(join(ROOT, "tests/fixtures/keys/ec-p256.key.pem"), join(dir, "key.pem"));
    copyFileSync(join(ROOT, "tests/fixtures/keys/localhost.cert.pem"), join(dir, "cert.pem"));
    out.push({ name, dir, args, file: "otoroshi.yaml" } as Case & { file: string });
  }
  return out;
}

describe("check accepts a config exactly when the gateway starts on it", async () => {
  const all = (await cases()) as (Case & { file: string })[];
  for (const c of all) {
    test(c.name, async () => {
      const file = join(c.dir, c.file);
      const [ck, st] = [await check(file), await starts(file, c.args)];
      // On a disagreement, both outputs say why.
      expect({ checkOk: ck.code === 0, started: st.started, check: ck.code === 0 ? "" : ck.stderr.split("\n")[0], start: st.started ? "" : st.stderr.split("\n")[0] }).toMatchObject({
        checkOk: st.started,
      });
      expect(ck.code === 0 || ck.code === 1).toBe(true);
    }, 60_000);
  }
});
