// A real redis-server for tests: 127.0.0.1, a free port, no persistence, stopped by PID.
// Tests skip (with a notice) when the Debian package is not installed.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { parseRedisUrl, RedisClient, RedisError } from "../../src/limits/redis.ts";

export const REDIS = "/usr/bin/redis-server";
export const hasRedis = existsSync(REDIS);

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export interface RedisProc {
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export async function startRedis(port?: number, extra: string[] = []): Promise<RedisProc> {
  const p = port ?? (await freePort());
  const proc = spawn(REDIS, ["--port", String(p), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmpdir(), ...extra], { stdio: "ignore" });
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const probe = new RedisClient(parseRedisUrl(`redis://127.0.0.1:${p}`), 200);
  for (let i = 0;; i++) {
    try {
      await probe.command(["PING"]);
      break;
    } catch (err) {
      if (err instanceof RedisError) break; // NOAUTH: up, and wants a password
      if (i > 100) throw new Error(`redis-server on port ${p} did not start`);
      await Bun.sleep(50);
    }
  }
  probe.close();
  return {
    port: p,
    proc,
    async stop() {
      proc.kill("SIGTERM");
      await exited;
    },
  };
}
