// The Deno adapter: the only place (with src/bin/deno.ts) that touches `Deno.*`.

import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import { GatewayError, errorResponse } from "../errors.ts";
import { log } from "../log.ts";
import type { Handler, Runtime, ServeOptions, ServerHandle, Signal, TlsCert, UpstreamFetch, UpstreamTls } from "./types.ts";

/** "::ffff:1.2.3.4" (an IPv4 peer on a dual-stack socket) → "1.2.3.4". */
function normaliseAddress(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped ? mapped[1] : address;
}

function internalError(error: unknown): Response {
  // A refusal that escaped the handler (e.g. the body limit below) keeps its status.
  if (error instanceof GatewayError) return errorResponse(error);
  // Last resort: the gateway renders its own errors, so reaching this is a bug worth a log
  // line; the client gets the Otoroshi error shape and never the stack.
  log("error", "http.unhandled_error", { error });
  return errorResponse(new GatewayError(500, "ERR_INTERNAL", "internal error"));
}

const tooLarge = () => errorResponse(new GatewayError(413, "ERR_PAYLOAD_TOO_LARGE", "payload too large"));

/**
 * Deno.serve has no body limit, so it is enforced here as Bun does natively: a declared
 * Content-Length over the limit is refused before the handler runs; a chunked body errors
 * the handler's stream once it grows past the limit.
 */
function limitBody(req: Request, max: number | undefined): Request | Response {
  if (max === undefined || req.body === null) return req;
  const declared = req.headers.get("content-length");
  if (declared !== null) return Number(declared) > max ? tooLarge() : req;
  let seen = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > max) controller.error(new GatewayError(413, "ERR_PAYLOAD_TOO_LARGE", "payload too large"));
      else controller.enqueue(chunk);
    },
  });
  return new Request(req, { body: req.body.pipeThrough(counter), duplex: "half" } as RequestInit);
}

/** Picks a certificate for an SNI name: exact, then "*.<parent>" (one label), then the first. */
function sniPicker(certs: TlsCert[]): (sni: string) => TlsCert {
  const byName = new Map<string, TlsCert>();
  for (const c of certs) {
    for (const raw of c.serverNames) {
      const name = raw.toLowerCase().replace(/\.$/, "");
      if (!byName.has(name)) byName.set(name, c);
    }
  }
  return (sni) => {
    const name = sni.toLowerCase().replace(/\.$/, "");
    const dot = name.indexOf(".");
    return byName.get(name) ?? (dot > 0 ? byName.get("*" + name.slice(dot)) : undefined) ?? certs[0];
  };
}

type ServeOnListener = (
  listener: Deno.TlsListener,
  signal: AbortSignal,
  handler: Deno.ServeHandler<Deno.NetAddr>,
  onError: (error: unknown) => Response,
  onListen: () => void,
  automaticCompression: boolean,
) => Deno.HttpServer<Deno.NetAddr>;

/**
 * Deno 2.9 has no public SNI for servers: Deno.serve takes one cert. Deno.listenTls honours
 * an unstable resolver under Symbol.for("unstableSniResolver") (called once per distinct
 * name, then cached by Deno), and Deno.serve's own engine for a listener is reachable only
 * through Deno's internals. Both are feature-detected; without them we serve the first cert.
 */
function serveWithSni(options: ServeOptions, certs: TlsCert[], signal: AbortSignal, handler: Deno.ServeHandler<Deno.NetAddr>) {
  const internal = (Deno as unknown as { internal?: symbol }).internal;
  const internals = internal ? (Deno as unknown as Record<symbol, { serveHttpOnListener?: ServeOnListener } | undefined>)[internal] : undefined;
  const serveOnListener = internals?.serveHttpOnListener;
  if (typeof serveOnListener !== "function") {
    log("warn", "tls.sni_unsupported", { message: "this Deno cannot choose certificates by SNI; serving the first certificate to every client" });
    return undefined;
  }
  const pick = sniPicker(certs);
  const listener = Deno.listenTls({
    hostname: options.hostname,
    port: options.port,
    cert: certs[0].cert,
    key: certs[0].key,
    alpnProtocols: ["h2", "http/1.1"],
    [Symbol.for("unstableSniResolver")]: (sni: string) => {
      const { cert, key } = pick(sni);
      return { cert, key };
    },
  } as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem);
  // The gateway passes backend bodies through as they are; never recompress them.
  return serveOnListener(listener, signal, handler, internalError, () => {}, false);
}

async function serve(options: ServeOptions): Promise<ServerHandle> {
  const { tls } = options;
  const secure = tls !== undefined && tls.length > 0;
  const inner: Handler = options.handler;
  const handler: Deno.ServeHandler<Deno.NetAddr> = (req, info) => {
    const limited = limitBody(req, options.maxRequestBodySize);
    if (limited instanceof Response) return limited;
    return inner(limited, { remoteAddress: normaliseAddress(info.remoteAddr.hostname), secure });
  };
  // Aborting closes the listener and every connection: that is stop(force).
  const abort = new AbortController();
  const server =
    (secure && tls.length > 1 ? serveWithSni(options, tls, abort.signal, handler) : undefined) ??
    Deno.serve(
      {
        hostname: options.hostname,
        port: options.port,
        signal: abort.signal,
        onError: internalError,
        onListen() {}, // main.ts logs the listener; Deno would print its own line
        ...(secure ? { cert: tls[0].cert, key: tls[0].key } : {}),
      },
      handler,
    );
  // idleTimeoutSeconds: Deno.serve exposes no keep-alive idle timeout; hyper's defaults apply.
  return {
    port: server.addr.port,
    async stop(force = false) {
      if (force) {
        abort.abort();
        await server.finished.catch(() => {});
      } else {
        await server.shutdown();
      }
    },
  };
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
  source.on("error", (err) => req.destroy(err));
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
