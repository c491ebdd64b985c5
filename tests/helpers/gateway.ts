// Builds the whole gateway in process from a YAML string, with an injected clock and a real
// upstream fetch, and calls it with Requests (no listener needed).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LoadOptions, loadSnapshot } from "../../src/config/load.ts";
import { configDigest, Reloader } from "../../src/config/reload.ts";
import { ConfigStore } from "../../src/config/store.ts";
import { createGateway } from "../../src/gateway.ts";
import type { ConnInfo, UpstreamFetch, UpstreamTls } from "../../src/runtime/types.ts";
import { LOG_DIR, recordConfig, recordSecret } from "./secrets.ts";

export const bunUpstream = (tls?: UpstreamTls): UpstreamFetch => (url, init) =>
  fetch(url, { ...init, redirect: "manual", decompress: false, tls: tls ? { ca: tls.ca, rejectUnauthorized: !tls.insecure } : undefined } as RequestInit);

export interface TestGateway {
  dir: string;
  file: string;
  store: ConfigStore;
  reloader: Reloader;
  clock: { now: number };
  /** Calls the gateway; `info` defaults to a loopback plain-HTTP peer. */
  call(input: string | Request, init?: RequestInit, info?: Partial<ConnInfo>): Promise<Response>;
  /** Rewrites the config file and reloads it. */
  rewrite(yaml: string): Promise<string>;
  close(): void;
}

export function buildGateway(yaml: string, opts: { env?: Record<string, string>; files?: Record<string, string>; now?: number; upstreamFetch?: LoadOptions["upstreamFetch"] } = {}): TestGateway {
  const context = { env: opts.env, files: opts.files };
  recordConfig(yaml, context);
  const dir = mkdtempSync(join(tmpdir(), "oto-gw-"));
  const file = join(dir, "otoroshi.yaml");
  for (const [name, content] of Object.entries(opts.files ?? {})) writeFileSync(join(dir, name), content);
  writeFileSync(file, yaml);
  const clock = { now: opts.now ?? Date.now() };
  const loadOpts: LoadOptions = { env: opts.env ?? {}, clock: () => clock.now, upstreamFetch: opts.upstreamFetch ?? bunUpstream };
  const { snapshot, parsed } = loadSnapshot(file, 1, loadOpts);
  const store = new ConfigStore(snapshot);
  const reloader = new Reloader(file, store, loadOpts, configDigest(parsed.config));
  const handler = createGateway(store);
  return {
    dir,
    file,
    store,
    reloader,
    clock,
    async call(input, init, info) {
      const req = typeof input === "string" ? new Request(input, init) : input;
      const res = await handler(req, { remoteAddress: "127.0.0.1", secure: false, ...info });
      if (LOG_DIR) await recordIssuedToken(req, res);
      return res;
    },
    async rewrite(y) {
      recordConfig(y, context);
      writeFileSync(file, y);
      return reloader.reload("test");
    },
    close() {
      // A test may have written the file itself: its last version joins the log scan too.
      if (LOG_DIR && existsSync(file)) recordConfig(readFileSync(file, "utf8"), context);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A token the token endpoint issued goes to the log scan's list (scripts/scan-logs.ts). */
async function recordIssuedToken(req: Request, res: Response): Promise<void> {
  if (res.status !== 200 || !new URL(req.url).pathname.endsWith("/oauth/token")) return;
  if (!(res.headers.get("content-type") ?? "").includes("json")) return;
  try {
    const body = (await res.clone().json()) as { access_token?: unknown };
    if (typeof body.access_token === "string") recordSecret(body.access_token);
  } catch {
    // Not a token response after all: nothing to record.
  }
}

export function basic(id: string, secret: string): string {
  return "Basic " + Buffer.from(`${id}:${secret}`).toString("base64");
}
