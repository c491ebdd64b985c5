// Builds the whole gateway in process from a YAML string, with an injected clock and a real
// upstream fetch, and calls it with Requests (no listener needed).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSnapshot, type LoadOptions } from "../../src/config/load.ts";
import { configDigest, Reloader } from "../../src/config/reload.ts";
import { ConfigStore } from "../../src/config/store.ts";
import { createGateway } from "../../src/gateway.ts";
import type { ConnInfo, UpstreamFetch, UpstreamTls } from "../../src/runtime/types.ts";

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
    call(input, init, info) {
      const req = typeof input === "string" ? new Request(input, init) : input;
      return handler(req, { remoteAddress: "127.0.0.1", secure: false, ...info });
    },
    async rewrite(y) {
      writeFileSync(file, y);
      return reloader.reload("test");
    },
    close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function basic(id: string, secret: string): string {
  return "Basic " + Buffer.from(`${id}:${secret}`).toString("base64");
}
