// Shared by the release tests: build one platform's binary, run a gateway from any command line
// (the binary, or the arm64 one under qemu) on 127.0.0.1 with port 0, stop it by PID.
import { spawn, type Subprocess } from "bun";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { recordConfig } from "../helpers/secrets.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const PKG_VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
/** What `npm run build` made; tests that need a real binary for this machine skip without it. */
export const HOST_BINARY = join(ROOT, "dist/otoroshi-lite");

/** Runs a command to completion, killed after `timeoutMs`. */
export async function run(cmd: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; timeoutMs?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = spawn(cmd, { cwd: opts.cwd ?? ROOT, env: (opts.env ?? process.env) as Record<string, string>, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** `bash scripts/release.sh --outdir DIR PLATFORM`: the same build as `npm run release`, one platform. */
export async function buildRelease(outdir: string, platform: string): Promise<string> {
  const r = await run(["bash", "scripts/release.sh", "--outdir", outdir, platform], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`scripts/release.sh ${platform} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return join(outdir, `otoroshi-lite-${platform}${platform.startsWith("windows") ? ".exe" : ""}`);
}

export interface LogLine {
  event: string;
  [k: string]: unknown;
}

export interface RunningGateway {
  proc: Subprocess;
  port: number;
  url: string;
  logs: LogLine[];
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs: number): Promise<LogLine>;
  stop(): Promise<number>;
}

/** Starts `cmd` (a gateway command line ending in its arguments) and waits for it to listen. */
export async function startGateway(cmd: string[], configFile: string, opts: { env?: Record<string, string>; cwd?: string; startTimeoutMs?: number } = {}): Promise<RunningGateway> {
  recordConfig(readFileSync(configFile, "utf8"));
  const proc = spawn([...cmd, "--config", configFile, "--port", "0"], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, OTOROSHI_LOG_LEVEL: "debug", ...opts.env },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const logDir = process.env.OTOROSHI_LOG_DIR;
  const logs: LogLine[] = [];
  const raw: string[] = [];
  const waiters = new Set<{ pred: (l: LogLine) => boolean; done: (l: LogLine) => void }>();
  void (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stderr as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        raw.push(line);
        // Kept for the suite's last step: no secret or token in any gateway log line.
        if (logDir) appendFileSync(join(logDir, `process-${proc.pid}.log`), line + "\n");
        try {
          const l = JSON.parse(line) as LogLine;
          logs.push(l);
          for (const w of waiters) if (w.pred(l)) w.done(l);
        } catch {
          // Not a JSON log line (a runtime's own output): nothing to record.
        }
      }
    }
  })();
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs: number) =>
    new Promise<LogLine>((res, rej) => {
      const found = logs.find(pred);
      if (found) return res(found);
      const w = {
        pred,
        done: (l: LogLine) => {
          clearTimeout(t);
          waiters.delete(w);
          res(l);
        },
      };
      const t = setTimeout(() => {
        waiters.delete(w);
        rej(new Error(`no such log line within ${timeoutMs} ms; stderr so far:\n${raw.join("\n")}`));
      }, timeoutMs);
      waiters.add(w);
    });
  const stop = async () => {
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    const code = await proc.exited;
    clearTimeout(timer);
    return code;
  };
  let listening: LogLine;
  try {
    listening = await Promise.race([
      waitForLog((l) => l.event === "server.listening", opts.startTimeoutMs ?? 30_000),
      proc.exited.then((code) => {
        throw new Error(`the gateway exited with ${code} before listening:\n${raw.join("\n")}`);
      }),
    ]);
  } catch (e) {
    proc.kill("SIGKILL");
    await proc.exited;
    throw e;
  }
  const port = Number(listening.port);
  return { proc, port, url: `http://127.0.0.1:${port}`, logs, waitForLog, stop };
}

/** The short commit scripts/release.sh stamps, or "unknown" outside a git checkout. */
export async function shortCommit(): Promise<string> {
  if (!existsSync(join(ROOT, ".git"))) return "unknown";
  const r = await run(["git", "rev-parse", "--short=7", "HEAD"], { timeoutMs: 10_000 });
  return r.code === 0 ? r.stdout.trim() : "unknown";
}
