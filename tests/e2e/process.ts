// Starts the gateway as a real process — the built binary or the sources under Deno, chosen by
// OTOROSHI_E2E_RUNTIME (binary | deno | bun) — on 127.0.0.1 with port 0, and stops it by PID.
import { spawn, type Subprocess } from "bun";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { recordConfig } from "../helpers/secrets.ts";

export const ROOT = resolve(import.meta.dir, "../..");
export const RUNTIME = (process.env.OTOROSHI_E2E_RUNTIME ?? "binary") as "binary" | "deno" | "bun";
export const BINARY = join(ROOT, "dist/otoroshi-lite");

/** With OTOROSHI_LOG_DIR set, every stderr and stdout (access log) line of a gateway process is kept for scripts/scan-logs.ts. */
function keepStderr(pid: number, lines: string): void {
  const dir = process.env.OTOROSHI_LOG_DIR;
  if (dir && lines) appendFileSync(join(dir, `process-${pid}.log`), lines.endsWith("\n") ? lines : lines + "\n");
}

/** The command line that runs otoroshi-lite with `args` on the selected runtime. */
export function command(args: string[]): string[] {
  switch (RUNTIME) {
    case "binary":
      if (!existsSync(BINARY)) throw new Error(`${BINARY} is missing: run npm run build first`);
      return [BINARY, ...args];
    case "deno":
      return [
        join(ROOT, "node_modules/.bin/deno"),
        "run",
        "--quiet",
        "--allow-net",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-sys",
        `--config=${join(ROOT, "deno.json")}`,
        join(ROOT, "src/bin/deno.ts"),
        ...args,
      ];
    case "bun":
      return [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/bin/bun.ts"), ...args];
  }
}

export interface LogLine {
  event: string;
  level: string;
  [k: string]: unknown;
}

export interface GatewayProcess {
  proc: Subprocess;
  dir: string;
  file: string;
  port: number;
  httpsPort?: number;
  url: string;
  logs: LogLine[];
  rawStderr: string[];
  /** The access log lines the process wrote on stdout (server.accessLog without a file). */
  access: Record<string, unknown>[];
  /** Waits (bounded) until a log line satisfies pred. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<number>;
}

export async function runCli(args: string[], opts: { env?: Record<string, string>; stdin?: string; cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = spawn(command(args), {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  keepStderr(proc.pid, stderr);
  return { code, stdout, stderr };
}

export async function startGateway(yaml: string, opts: { files?: Record<string, string>; env?: Record<string, string>; dir?: string; args?: string[] } = {}): Promise<GatewayProcess> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "oto-e2e-"));
  const file = join(dir, "otoroshi.yaml");
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), content);
  writeFileSync(file, yaml);
  recordConfig(yaml, { env: opts.env, files: opts.files });
  const proc = spawn(command(["--config", file, "--port", "0", ...(opts.args ?? [])]), {
    cwd: dir,
    env: { ...process.env, OTOROSHI_LOG_LEVEL: "debug", ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const access: Record<string, unknown>[] = [];
  // Read to the end, or the process would block on a full pipe.
  void (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stdout as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        keepStderr(proc.pid, line);
        try {
          access.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // Not an access line (stdout carries nothing else, but a runtime may print there).
        }
      }
    }
    keepStderr(proc.pid, buf);
  })();
  const logs: LogLine[] = [];
  const rawStderr: string[] = [];
  const waiters: { pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stderr as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        rawStderr.push(line);
        keepStderr(proc.pid, line);
        try {
          const l = JSON.parse(line) as LogLine;
          logs.push(l);
          for (const w of [...waiters]) {
            if (w.pred(l)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(l);
            }
          }
        } catch {
          // Not a JSON log line (a runtime's own output): kept in the file only.
        }
      }
    }
    keepStderr(proc.pid, buf);
  })();
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 20_000) =>
    new Promise<LogLine>((res, rej) => {
      const found = logs.find(pred);
      if (found) return res(found);
      const w = {
        pred,
        resolve: (l: LogLine) => {
          clearTimeout(t);
          res(l);
        },
      };
      const t = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        rej(new Error(`timed out waiting for a log line; stderr so far:\n${rawStderr.join("\n")}`));
      }, timeoutMs);
      waiters.push(w);
    });
  let started: LogLine;
  let https: LogLine | undefined;
  try {
    started = await Promise.race([
      waitForLog((l) => l.event === "server.listening" && l.protocol === "http", 30_000),
      proc.exited.then((code) => {
        throw new Error(`gateway exited with ${code} before listening:\n${rawStderr.join("\n")}`);
      }),
    ]);
    // With server.https, the TLS listener is logged right after the plain one.
    https = /^\s+https:/m.test(yaml) ? await waitForLog((l) => l.event === "server.listening" && l.protocol === "https", 10_000) : undefined;
  } catch (e) {
    // A gateway that never became ready is still stopped by its PID, never left behind.
    proc.kill("SIGKILL");
    await proc.exited;
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const port = Number(started.port);
  return {
    proc,
    dir,
    file,
    port,
    httpsPort: https ? Number(https.port) : undefined,
    url: `http://127.0.0.1:${port}`,
    logs,
    rawStderr,
    access,
    waitForLog,
    async stop() {
      // The test may have rewritten the config meanwhile: its last version joins the scan too.
      if (process.env.OTOROSHI_LOG_DIR && existsSync(file)) recordConfig(readFileSync(file, "utf8"), { env: opts.env, files: opts.files });
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      const code = await proc.exited;
      clearTimeout(timer);
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
