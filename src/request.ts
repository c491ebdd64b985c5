// What every stage reads about the incoming request, computed once per request.
import type { ConnInfo } from "./runtime/types.ts";
import type { AddressMatcher } from "./net/cidr.ts";
import { parseCookies } from "./plugins/credentials.ts";
import { canonicalPath, isPathProblem } from "./router/path.ts";

export interface RequestContext {
  readonly req: Request;
  readonly info: ConnInfo;
  readonly method: string;
  /**
   * The target URI's authority (may carry a port): the Host header as received, or an
   * absolute-form request target's authority, which wins over Host (RFC 9112 §3.2.2).
   */
  readonly rawHost: string;
  /** Lower-cased host without port or trailing dot. */
  readonly host: string;
  /**
   * The canonical path (router/path.ts): what the router matches and the backend receives.
   * When `pathProblem` is set, the path as received, for the sinks' own 4xx only.
   */
  readonly path: string;
  /** Why the path has no canonical form (the handler answers 400), or null. */
  readonly pathProblem: string | null;
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
  /** The request id the front door gave this request (src/monitoring/request-id.ts), for log lines; null in bare handlers. */
  readonly requestId: string | null;
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

export function splitUrl(url: string): { authority: string; path: string; search: string } {
  // Faster than new URL(), which would also rewrite the path: req.url is "scheme://authority/…"
  // as the runtime built it, or the bare request target when the runtime could not build one.
  const s = url.charCodeAt(0) === 47 ? -1 : url.indexOf("://");
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

export function createContext(req: Request, info: ConnInfo, trustedProxies: AddressMatcher, now: number, requestId: string | null = null): RequestContext {
  const { authority, path: received, search } = splitUrl(req.url);
  const header = req.headers.get("host");
  // RFC 9112 §3.2.2: the authority of an absolute-form target (the adapter reports it) wins over
  // Host. Two Host values or an invalid one stay visible so the handler refuses them (§3.2).
  const rawHost = header !== null && /[,\s]/.test(header) ? header : (info.authority ?? header ?? authority);
  const path = canonicalPath(received);
  // The asterisk form is OPTIONS's only (RFC 9112 §3.2.4); the router matches no route on it.
  const pathProblem = isPathProblem(path) ? path.problem : path === "*" && req.method !== "OPTIONS" ? "Invalid request path: '*' is for OPTIONS only" : null;
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
    path: isPathProblem(path) ? received : path,
    pathProblem,
    search,
    trusted,
    secure,
    clientIp,
    now,
    requestId,
    query: () => (q ??= new URLSearchParams(search)),
    cookies: () => (c ??= parseCookies(req.headers.get("cookie"))),
  };
}

/**
 * The request with its URL's path replaced by the canonical one, for code that routes on
 * req.url itself (Hono apps): every spelling of a path then reaches the same handler. The same
 * Request when the path already is canonical (or has no canonical form: the caller answers 4xx).
 */
export function withCanonicalUrl(ctx: RequestContext): Request {
  const url = ctx.req.url;
  if (ctx.pathProblem !== null || splitUrl(url).path === ctx.path) return ctx.req;
  const s = url.indexOf("://");
  const slash = s < 0 ? -1 : url.indexOf("/", s + 3);
  const origin = s < 0 ? `http://${ctx.rawHost}` : slash < 0 ? url : url.slice(0, slash);
  return new Request(origin + ctx.path + ctx.search, ctx.req);
}
