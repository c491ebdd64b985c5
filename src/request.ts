// What every stage reads about the incoming request, computed once per request.
import type { ConnInfo } from "./runtime/types.ts";
import type { AddressMatcher } from "./net/cidr.ts";
import { parseCookies } from "./plugins/credentials.ts";

export interface RequestContext {
  readonly req: Request;
  readonly info: ConnInfo;
  readonly method: string;
  /** Host header as received (may carry a port). */
  readonly rawHost: string;
  /** Lower-cased host without port or trailing dot. */
  readonly host: string;
  /** Path as in the URL (percent-encoding kept, dot segments resolved by URL parsing). */
  readonly path: string;
  /** "?…" or "". */
  readonly search: string;
  /** The socket peer is one of server.trustedProxies. */
  readonly trusted: boolean;
  /** TLS on our listener, or X-Forwarded-Proto: https from a trusted proxy. */
  readonly secure: boolean;
  /** Client address: the socket peer, or the first untrusted hop of X-Forwarded-For from a trusted proxy. */
  readonly clientIp: string;
  /** Epoch ms when the request started (injected clock). */
  readonly now: number;
  query(): URLSearchParams;
  cookies(): Map<string, string>;
}

export function hostOf(hostHeader: string): string {
  let h = hostHeader.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end > 0 ? h.slice(0, end + 1) : h;
  }
  const colon = h.indexOf(":");
  if (colon >= 0) h = h.slice(0, colon);
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h;
}

function splitUrl(url: string): { authority: string; path: string; search: string } {
  // Faster than new URL() and enough: the runtime already produced an absolute, normalised URL.
  const s = url.indexOf("://");
  const start = s < 0 ? 0 : s + 3;
  let p = url.indexOf("/", start);
  const q0 = url.indexOf("?", start);
  if (p < 0 || (q0 >= 0 && q0 < p)) p = q0 < 0 ? url.length : q0;
  const authority = url.slice(start, p);
  const q = url.indexOf("?", p);
  const h = url.indexOf("#", p);
  const pathEnd = q >= 0 ? q : h >= 0 ? h : url.length;
  const path = url.slice(p, pathEnd) || "/";
  const search = q >= 0 ? url.slice(q, h > q ? h : url.length) : "";
  return { authority, path, search: search === "?" ? "" : search };
}

export function createContext(req: Request, info: ConnInfo, trustedProxies: AddressMatcher, now: number): RequestContext {
  const { authority, path, search } = splitUrl(req.url);
  const rawHost = req.headers.get("host") ?? authority;
  const trusted = trustedProxies(info.remoteAddress);
  let secure = info.secure;
  let clientIp = info.remoteAddress;
  if (trusted) {
    const proto = req.headers.get("x-forwarded-proto");
    if (proto) secure = proto.split(",")[0].trim().toLowerCase() === "https";
    const xff = req.headers.get("x-forwarded-for");
    if (xff) {
      // Walk from the right: the first address that is not a trusted proxy is the client.
      const hops = xff.split(",").map((h) => h.trim()).filter(Boolean);
      for (let i = hops.length - 1; i >= 0; i--) {
        clientIp = hops[i];
        if (!trustedProxies(hops[i])) break;
      }
    }
  }
  let q: URLSearchParams | undefined;
  let c: Map<string, string> | undefined;
  return {
    req,
    info,
    method: req.method,
    rawHost,
    host: hostOf(rawHost),
    path,
    search,
    trusted,
    secure,
    clientIp,
    now,
    query: () => (q ??= new URLSearchParams(search)),
    cookies: () => (c ??= parseCookies(req.headers.get("cookie"))),
  };
}
