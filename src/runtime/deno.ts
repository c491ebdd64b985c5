// The Deno adapter: the only place (with deno-http.ts, deno-ws.ts and src/bin/deno.ts) that touches `Deno.*`.

import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import { RequestBodyError } from "../errors.ts";
import { log } from "../log.ts";
import { serveConnection, serveHttpAvailable } from "./deno-http.ts";
import { upgradeVia } from "./deno-ws.ts";
import { certPicker, ConnectionDeadlines, limitBody, normaliseAddress } from "./listener.ts";
import type { ConnInfo, Handler, Runtime, ServeOptions, ServerHandle, Signal, TlsCert, UpstreamFetch, UpstreamInit, UpstreamTls } from "./types.ts";

/**
 * Deno.serve (2.9) has no request-header timeout and no keep-alive idle timeout
 * (denoland/deno#3515, #32497), so the adapter accepts connections itself and serves each with
 * Deno.serveHttp (deno-http.ts): it can then close a connection that is idle too long. Deno.serve's
 * own per-connection engine would be faster but closes an upgraded WebSocket right after its 101.
 */
type ConnInfoHandler = (req: Request, remote: Deno.NetAddr, signal: AbortSignal, taken: () => void) => Response | Promise<Response>;

/**
 * Deno 2.9 has no public SNI for servers; Deno.listenTls honours an unstable resolver under
 * Symbol.for("unstableSniResolver") (called once per distinct name, then cached by Deno).
 */
function listen(options: ServeOptions, certs: TlsCert[]): Deno.Listener {
  if (certs.length === 0) return Deno.listen({ hostname: options.hostname, port: options.port });
  const pick = certPicker(certs, ({ cert, key }) => ({ cert, key }));
  return Deno.listenTls(
    {
      hostname: options.hostname,
      port: options.port,
      ...(REUSE_PORT ? { reusePort: true } : {}),
      cert: certs[0].cert,
      key: certs[0].key,
      alpnProtocols: ["h2", "http/1.1"],
      ...(certs.length > 1 ? { [Symbol.for("unstableSniResolver")]: pick } : {}),
    } as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem,
  );
}

/**
 * SO_REUSEPORT lets a TLS listener with new certificates take the port before the old one
 * closes (updateTls). Deno allows it on listenTls only with --unstable-net (deno.json), and
 * exits rather than throws without it: the flag is detected by an API it also unlocks.
 */
const REUSE_PORT = typeof (Deno as unknown as { listenDatagram?: unknown }).listenDatagram === "function";

/**
 * Binds and releases the port without SO_REUSEPORT first, so that a second gateway started on
 * the same port by the same user fails to start instead of silently sharing the traffic.
 */
function exclusivePort(options: ServeOptions): number {
  const probe = Deno.listen({ hostname: options.hostname, port: options.port });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  return port;
}

/** Deno.serveHttp on each connection this adapter accepts, under ConnectionDeadlines. */
function serveTimed(options: ServeOptions, serveHttp: NonNullable<ReturnType<typeof serveHttpAvailable>>, handler: ConnInfoHandler): ServerHandle {
  const deadlines = new ConnectionDeadlines(options.idleTimeoutSeconds);
  let served = options.tls ?? [];
  let listener = listen(REUSE_PORT && served.length ? { ...options, port: exclusivePort(options) } : options, served);
  const port = (listener.addr as Deno.NetAddr).port;
  let closing = false;
  // One loop per listener; a listener replaced by updateTls ends its loop.
  const retired = new WeakSet<Deno.Listener>();
  const accept = async (l: Deno.Listener) => {
    let warned = 0;
    while (!closing && !retired.has(l)) {
      let conn: Deno.Conn;
      try {
        conn = await l.accept();
      } catch (error) {
        if (closing || retired.has(l)) return;
        // Out of file descriptors and the like: back off instead of spinning; log once a second.
        if (performance.now() - warned > 1000) {
          warned = performance.now();
          log("warn", "http.accept_failed", { error });
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      track(conn);
    }
  };
  const track = (conn: Deno.Conn) => {
    // Known gap: Deno cannot close a TLS connection during its handshake (its TLS stream holds
    // the socket until the handshake ends, with no timeout), so a client that never completes
    // one is closed only once it does (docs/security.md, "Limits and slow clients").
    if (closing) return void conn.close();
    const c = deadlines.add();
    const remote = conn.remoteAddr as Deno.NetAddr;
    c.served(serveConnection(serveHttp, conn, c.signal, (req, signal, taken) => handler(req, remote, signal, taken), c.request));
  };
  const accepting = [accept(listener)];
  return {
    port,
    async stop(force = false) {
      closing = true;
      listener.close();
      // A stalled request body can hold a graceful stop: main.ts bounds the wait.
      await Promise.allSettled([...accepting, deadlines.stop(force)]);
    },
    // Deno caches the certificate its SNI resolver gave for a name for the listener's life, so
    // new certificates need a new listener on the same port. Open connections are not the
    // listener's: they go on, with the certificate they were given. Without SO_REUSEPORT the
    // port is free again only once the old listener's pending accept has failed.
    ...(options.tls?.length
      ? {
        async updateTls(certs: TlsCert[]) {
          if (certs.length === 0 || closing) throw new Error(closing ? "the listener is stopping" : "a TLS listener needs a certificate");
          const old = listener;
          retired.add(old);
          if (!REUSE_PORT) {
            old.close();
            await accepting[accepting.length - 1];
          }
          try {
            listener = listen({ ...options, port }, certs);
          } catch (e) {
            if (REUSE_PORT) retired.delete(old);
            else {
              listener = listen({ ...options, port }, served);
              accepting.push(accept(listener));
            }
            throw e;
          }
          served = certs;
          if (REUSE_PORT) old.close();
          accepting.push(accept(listener));
        },
      }
      : {}),
  };
}

async function serve(options: ServeOptions): Promise<ServerHandle> {
  const secure = options.tls !== undefined && options.tls.length > 0;
  const inner: Handler = options.handler;
  const serveHttp = serveHttpAvailable();
  // Deno.serve alone would let slow clients hold connections forever: refuse to start instead.
  if (!serveHttp) {
    throw new Error(`Deno ${Deno.version.deno} does not have the Deno.serveHttp API the gateway needs to enforce header and idle timeouts; run the Deno version package.json names, or the Bun binary`);
  }
  const handler: ConnInfoHandler = (req, remote, signal, taken) => {
    const limited = limitBody(req, options.maxRequestBodySize);
    if (limited instanceof Response) return limited;
    // serveHttp's req.signal does not abort when the client leaves (deno-http.ts): the core reads this one.
    Object.defineProperty(limited, "signal", { value: signal });
    // Deno builds req.url from an absolute-form target's own authority (RFC 9112 §3.2.2), and
    // from Host otherwise: an authority that is not Host's came from the target.
    const url = req.url;
    const from = url.indexOf("://") + 3;
    const to = url.indexOf("/", from);
    const authority = url.slice(from, to < 0 ? url.length : to);
    const remoteAddress = normaliseAddress(remote.hostname);
    const info: ConnInfo = authority === req.headers.get("host") ? { remoteAddress, secure } : { remoteAddress, secure, authority };
    if (req.headers.has("upgrade")) info.upgrade = upgradeVia(req, taken);
    return inner(limited, info);
  };
  return serveTimed(options, serveHttp, handler);
}

// Deno's fetch decodes gzip and br bodies even when the caller sets Accept-Encoding, keeps the
// Content-Encoding and Content-Length of the encoded body (so a proxy forwarding them sends a
// broken response), has no option to turn decoding off, and no per-client way to accept an
// invalid certificate. node:http(s) has none of these problems, so backends are called with it.

const NULL_BODY_STATUS = new Set([101, 103, 204, 205, 304]);
const plainAgent = new http.Agent({ keepAlive: true });

function writeBody(req: http.ClientRequest, body: BodyInit | null | undefined): void {
  if (body === null || body === undefined) return void req.end();
  if (typeof body === "string" || body instanceof Uint8Array) return void req.end(body);
  if (body instanceof ArrayBuffer) return void req.end(new Uint8Array(body));
  if (ArrayBuffer.isView(body)) return void req.end(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
  const stream = body instanceof ReadableStream ? body : new Response(body).body;
  if (stream === null) return void req.end();
  const source = Readable.fromWeb(stream as Parameters<typeof Readable.fromWeb>[0]);
  // The client's upload failed (broke off, bad framing): say so, the backend is not to blame.
  source.on("error", (err) => req.destroy(new RequestBodyError(err)));
  // A failed call (refused, aborted) releases the caller's body stream too.
  req.on("error", (err) => source.destroy(err));
  source.pipe(req);
}

function nodeFetch(url: string, init: RequestInit, secureAgent: https.Agent): Promise<Response> {
  const signal = init.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const isHttps = target.protocol === "https:";
    const method = (init.method ?? "GET").toUpperCase();
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const options = { method, headers, agent: isHttps ? secureAgent : plainAgent, ...(signal ? { signal } : {}) };
    const onResponse = (res: http.IncomingMessage) => {
      const out = new Headers();
      for (let i = 0; i < res.rawHeaders.length; i += 2) out.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
      const status = res.statusCode ?? 502;
      const empty = method === "HEAD" || NULL_BODY_STATUS.has(status);
      if (empty) res.resume();
      try {
        const body = empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
        resolve(new Response(body, { status, statusText: res.statusMessage ?? "", headers: out }));
      } catch (err) {
        res.destroy();
        reject(err);
      }
    };
    const req = isHttps ? https.request(target, options, onResponse) : http.request(target, options, onResponse);
    const connectMs = (init as UpstreamInit).connectTimeoutMs;
    if (connectMs !== undefined && connectMs > 0) {
      // Only a new connection has a connect phase; a pooled one is already open.
      req.once("socket", (socket) => {
        if (!socket.connecting) return;
        const t = setTimeout(() => req.destroy(Object.assign(new Error("connecting to the backend timed out"), { code: "ConnectTimeout" })), connectMs);
        socket.once("connect", () => clearTimeout(t));
        socket.once("close", () => clearTimeout(t));
      });
    }
    // Like fetch, an aborted call rejects with the signal's reason (e.g. a TimeoutError).
    req.on("error", (err) => reject(signal?.aborted ? signal.reason : err));
    writeBody(req, init.body);
  });
}

const fetchers = new Map<string, UpstreamFetch>();

function upstreamFetch(tls: UpstreamTls = {}): UpstreamFetch {
  const key = JSON.stringify([tls.ca ?? null, tls.insecure === true]);
  let f = fetchers.get(key);
  if (f) return f;
  // node:https semantics: `ca` replaces the default roots, as the contract asks.
  const agent = new https.Agent({
    keepAlive: true,
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.insecure ? { rejectUnauthorized: false } : {}),
  });
  f = (url, init) => nodeFetch(url, init, agent);
  fetchers.set(key, f);
  return f;
}

/** A module worker (Deno runs only those) with the process's permissions (Deno's default: inherit). */
function createWorker(entry: string): Worker {
  return new Worker(new URL(`../${entry}`, import.meta.url).href, { type: "module" });
}

export const runtime: Runtime = {
  name: "deno",
  version: Deno.version.deno,
  args: [...Deno.args],
  serve,
  upstreamFetch,
  onSignal(signal: Signal, listener: () => void) {
    Deno.addSignalListener(signal, listener);
  },
  createWorker,
  exit(code: number): never {
    Deno.exit(code);
  },
};
