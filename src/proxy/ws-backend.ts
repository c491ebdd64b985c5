// The backend half of a proxied WebSocket: the opening handshake (RFC 6455 §4.1) over node:http
// or node:https, which both runtimes provide and which, unlike their WebSocket clients, can send
// any request header, verify TLS with the target's own settings, and hand back a refused
// upgrade's status, headers and body for the client.

import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import { Readable } from "node:stream";
import { GatewayError } from "../errors.ts";
import type { UpstreamTls } from "../runtime/types.ts";
import { clientResponseHeaders } from "./headers.ts";

export interface BackendHandshake {
  hostname: string;
  port: number;
  tls: boolean;
  upstreamTls?: UpstreamTls;
  /** Path and query as forwarded. */
  pathAndQuery: string;
  /** The backend request headers (Host set); the handshake fields are added here. */
  headers: Headers;
  /** The subprotocols the client offered (Sec-WebSocket-Protocol), or null. */
  offered: string | null;
  timeoutMs: number;
  signal: AbortSignal;
}

export type HandshakeResult =
  | { kind: "open"; socket: Duplex; head: Uint8Array; protocol: string | null; setCookies: string[] }
  | { kind: "refused"; response: Response; body: Readable | null };

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const NULL_BODY = new Set([204, 205, 304]);

export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

export class HandshakeTimeout extends Error {
  override name = "TimeoutError";
}

/** Whether the backend's 101 completes the handshake the gateway offered (§4.1, client steps 1–6). */
function check101(res: http.IncomingMessage, key: string, offered: string | null): string | null | Error {
  if ((res.headers.upgrade ?? "").toLowerCase() !== "websocket") return new Error("101 without Upgrade: websocket");
  if (res.headers["sec-websocket-accept"] !== acceptKey(key)) return new Error("101 with a wrong Sec-WebSocket-Accept");
  if (res.headers["sec-websocket-extensions"] !== undefined) return new Error("101 with an extension the gateway did not offer");
  const chosen = res.headers["sec-websocket-protocol"];
  if (chosen === undefined) return null;
  const list = (offered ?? "").split(",").map((p) => p.trim());
  return list.includes(chosen) ? chosen : new Error("101 with a subprotocol the client did not offer");
}

export function handshake(o: BackendHandshake): Promise<HandshakeResult> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString("base64");
    const headers: Record<string, string | string[]> = {};
    o.headers.forEach((value, name) => {
      headers[name] = value;
    });
    // The client's own key, version and extensions belong to its hop: the gateway speaks its
    // own handshake with the backend and negotiates no extension (no permessage-deflate).
    delete headers["sec-websocket-key"];
    delete headers["sec-websocket-extensions"];
    delete headers["sec-websocket-accept"];
    headers["connection"] = "Upgrade";
    headers["upgrade"] = "websocket";
    headers["sec-websocket-version"] = "13";
    headers["sec-websocket-key"] = key;
    if (o.offered !== null) headers["sec-websocket-protocol"] = o.offered;
    else delete headers["sec-websocket-protocol"];
    const options: https.RequestOptions = {
      host: o.hostname,
      port: o.port,
      path: o.pathAndQuery,
      method: "GET",
      headers,
      // One connection per WebSocket: an upgraded connection never goes back to a pool.
      agent: false,
      ...(o.tls
        ? {
          servername: /^[\d.]+$|:/.test(o.hostname) ? undefined : o.hostname,
          ...(o.upstreamTls?.ca !== undefined ? { ca: o.upstreamTls.ca } : {}),
          rejectUnauthorized: o.upstreamTls?.insecure !== true,
        }
        : {}),
    };
    const req = o.tls ? https.request(options) : http.request(options);
    let settled = false;
    const timer = o.timeoutMs > 0 && Number.isFinite(o.timeoutMs) ? setTimeout(() => req.destroy(new HandshakeTimeout("backend handshake timed out")), o.timeoutMs) : undefined;
    const onAbort = () => req.destroy(o.signal.reason instanceof Error ? o.signal.reason : new Error("client left"));
    o.signal.addEventListener("abort", onAbort, { once: true });
    const settle = () => {
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      o.signal.removeEventListener("abort", onAbort);
    };
    req.on("upgrade", (res: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      settle();
      const protocol = check101(res, key, o.offered);
      if (protocol instanceof Error) {
        socket.destroy();
        return reject(protocol);
      }
      const cookies = res.headers["set-cookie"] ?? [];
      resolve({ kind: "open", socket, head, protocol, setCookies: cookies });
    });
    req.on("response", (res: http.IncomingMessage) => {
      settle();
      const status = res.statusCode ?? 502;
      if (status === 101 || status < 200 || status > 599) {
        res.destroy();
        return reject(new Error(`backend answered the upgrade with status ${status}`));
      }
      const raw = new Headers();
      for (let i = 0; i < res.rawHeaders.length; i += 2) raw.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
      const empty = NULL_BODY.has(status);
      if (empty) res.resume();
      const body = empty ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
      resolve({ kind: "refused", response: new Response(body, { status, statusText: res.statusMessage ?? "", headers: clientResponseHeaders(raw) }), body: empty ? null : res });
    });
    req.on("error", (err) => {
      if (settled) return;
      settle();
      reject(err);
    });
    req.end();
  });
}

/** GatewayError for a refusal of the client's own handshake (RFC 6455 §4.2.1, §4.4). */
export function badHandshake(message: string, version = false): GatewayError {
  return new GatewayError(version ? 426 : 400, "ERR_BAD_REQUEST", message, version ? { "sec-websocket-version": "13" } : {});
}
