// The Bun adapter: the only place (with src/bin/bun.ts) that touches `Bun.*`.

import { type AddressInfo, createServer } from "node:net";
import { errorResponse, GatewayError } from "../errors.ts";
import { log } from "../log.ts";
import { bunWebSocket, UPGRADED, upgradeVia } from "./bun-ws.ts";
import type { ConnInfo, Runtime, ServeOptions, ServerHandle, Signal, TlsCert, UpstreamFetch, UpstreamTls } from "./types.ts";

// Bun's socket timer counts idle seconds in a byte: larger values are refused.
const MAX_IDLE_TIMEOUT = 255;

/** "::ffff:1.2.3.4" (an IPv4 peer on a dual-stack socket) → "1.2.3.4". */
function normaliseAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped ? mapped[1] : address;
}

/**
 * Bun picks a certificate by SNI from an array of `tls` entries, one `serverName` each
 * (wildcards match one label). An entry without `serverName` answers clients that send no
 * SNI or an unknown name, so the first certificate is registered that way too.
 * Bun lets a later entry replace an earlier one with the same name; we keep the first
 * declared instead, so "first wins" holds on both runtimes.
 */
function bunTls(certs: TlsCert[]): Bun.TLSOptions[] {
  const entries: Bun.TLSOptions[] = [{ cert: certs[0].cert, key: certs[0].key }];
  const seen = new Set<string>();
  for (const { cert, key, serverNames } of certs) {
    for (const raw of serverNames) {
      const name = raw.toLowerCase().replace(/\.$/, "");
      if (seen.has(name)) continue;
      seen.add(name);
      entries.push({ cert, key, serverName: name });
    }
  }
  return entries;
}

// RFC 9112 §9.6: a server that closes the connection after a request carrying `Connection:
// close` says so in its response. Bun closes the connection but does not add the field.
const CLOSE = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i;

function sayClose(res: Response): Response {
  try {
    res.headers.set("connection", "close");
    return res;
  } catch {
    // Immutable headers (a guarded Response): copy them.
    const headers = new Headers(res.headers);
    headers.set("connection", "close");
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  }
}

function internalError(error: unknown): Response {
  // A refusal that escaped the handler keeps its status and wire shape.
  if (error instanceof GatewayError) return errorResponse(error);
  // Last resort: the gateway renders its own errors, so reaching this is a bug worth a log
  // line; the client gets the Otoroshi error shape and never the stack.
  log("error", "http.unhandled_error", { error });
  return errorResponse(new GatewayError(500, "ERR_INTERNAL", "internal error"));
}

/**
 * Binds and releases the port without SO_REUSEPORT first: the TLS listener sets it (to hand its
 * port over, see updateTls), and without this check a second gateway started on the same port
 * by the same user would silently share the traffic instead of failing to start.
 */
async function exclusivePort(hostname: string, port: number): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once("error", reject);
    probe.listen({ port, host: hostname, exclusive: true }, () => resolve());
  });
  const bound = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return bound;
}

async function serve(options: ServeOptions): Promise<ServerHandle> {
  const { handler, tls } = options;
  const secure = tls !== undefined && tls.length > 0;
  const listen = (port: number, certs: TlsCert[] | undefined) =>
    Bun.serve({
      hostname: options.hostname,
      port,
      // Without this Bun renders an HTML error page with the stack outside production.
      development: false,
      // HTTP/2 for clients that offer "h2" by ALPN (RFC 9113 §3.2), HTTP/1.1 for the others; the
      // plain listener stays HTTP/1.1 only (no prior-knowledge h2c).
      ...(certs ? { tls: bunTls(certs), reusePort: true, http2: true } : {}),
      ...(options.idleTimeoutSeconds !== undefined ? { idleTimeout: Math.max(0, Math.min(MAX_IDLE_TIMEOUT, Math.floor(options.idleTimeoutSeconds))) } : {}),
      ...(options.maxRequestBodySize !== undefined ? { maxRequestBodySize: options.maxRequestBodySize } : {}),
      websocket: bunWebSocket,
      fetch(req, srv) {
        // null when the peer is already gone; the handler still runs, with no address to report.
        const ip = srv.requestIP(req);
        const info: ConnInfo = { remoteAddress: ip ? normaliseAddress(ip.address) : "", secure };
        if (req.headers.has("upgrade")) {
          info.upgrade = upgradeVia(srv, req);
          // Bun wants nothing back from fetch once it has upgraded the request.
          return Promise.resolve(handler(req, info)).then((r) => (r === UPGRADED ? undefined : r)) as Promise<Response>;
        }
        const res = handler(req, info);
        const connection = req.headers.get("connection");
        return connection !== null && CLOSE.test(connection) ? Promise.resolve(res).then(sayClose) : res;
      },
      error: internalError,
    });
  const port = secure ? await exclusivePort(options.hostname, options.port) : options.port;
  let server = listen(port, secure ? tls : undefined);
  const draining = new Set<Promise<void>>();
  return {
    port: server.port ?? port,
    async stop(force = false) {
      await Promise.all([server.stop(force), ...draining]);
    },
    // Bun.serve cannot change its certificates (reload() ignores `tls`: oven-sh/bun#43815), so a
    // new listener takes the port (SO_REUSEPORT) and the old one stops accepting and drains:
    // its requests in flight finish, its idle keep-alive connections close (clients reconnect,
    // RFC 9112 §9.5). Linux resets what was still in the old socket's accept queue unless
    // net.ipv4.tcp_migrate_req=1 (docs/https.md).
    ...(secure
      ? {
        async updateTls(certs: TlsCert[]) {
          if (certs.length === 0) throw new Error("a TLS listener needs a certificate");
          const next = listen(server.port ?? port, certs);
          const old = server;
          server = next;
          const done = old.stop(false).catch(() => {});
          draining.add(done);
          void done.then(() => draining.delete(done));
        },
      }
      : {}),
  };
}

// One tls option object per distinct setting, so "same setting" means "same client" (Bun
// pools connections per TLS configuration).
const fetchers = new Map<string, UpstreamFetch>();

function upstreamFetch(tls: UpstreamTls = {}): UpstreamFetch {
  const key = JSON.stringify([tls.ca ?? null, tls.insecure === true]);
  let f = fetchers.get(key);
  if (f) return f;
  // Bun's `ca` replaces the default trust store (observed: a CA added through
  // NODE_EXTRA_CA_CERTS is no longer trusted once `ca` is set), which is what the contract asks.
  const tlsOptions = {
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.insecure ? { rejectUnauthorized: false } : {}),
  };
  f = (url, init) =>
    fetch(url, {
      ...init,
      redirect: "manual",
      decompress: false,
      // Backends are addressed directly, as on Deno (node:http ignores HTTP_PROXY), so the
      // environment of the gateway process never reroutes upstream traffic.
      proxy: false,
      tls: tlsOptions,
    });
  fetchers.set(key, f);
  return f;
}

// A binary from `bun build --compile` runs from Bun's embedded file system: each entry point of
// the build is at /$bunfs/root/<its path under --root, as .js> (package.json `build`: --root src).
// Its import.meta.url may name the build machine's sources instead, which must not be loaded
// from disk even when they happen to be there. The embedded root is the folder of Bun.main: /$bunfs/root/ on Linux and macOS, B:/~BUN/root/ on
// Windows, so it is derived rather than spelled.
const EMBEDDED_ROOT = Bun.isStandaloneExecutable ? Bun.main.replace(/[^\\/]*$/, "") : null;

function createWorker(entry: string): Worker {
  const url = EMBEDDED_ROOT !== null ? EMBEDDED_ROOT + entry.replace(/\.ts$/, ".js") : new URL(`../${entry}`, import.meta.url).href;
  return new Worker(url, { type: "module" });
}

export const runtime: Runtime = {
  name: "bun",
  version: Bun.version,
  // Both `bun src/bin/bun.ts a b` and a compiled binary (argv[1] is then the virtual
  // "/$bunfs/root/<name>" path) put the arguments from index 2 on.
  args: Bun.argv.slice(2),
  serve,
  upstreamFetch,
  onSignal(signal: Signal, listener: () => void) {
    process.on(signal, listener);
  },
  createWorker,
  exit(code: number): never {
    process.exit(code);
  },
};
