// `otoroshi-lite explain`: what the gateway would do with one request, sending nothing anywhere.
//
// The request goes through the snapshot's real handler — the same router, plugin stages, header
// rules and forward() as a served request, so the answer cannot drift from what runs — compiled
// in dry mode: no failed-secret limiter and no quota store (nothing counted, nothing consumed),
// and an upstream "fetch" that records the call the gateway would make instead of making it (no
// connection, no DNS). Each plugin's decision comes from running the route's own stages one by
// one. Secrets in the output are masked.
import { STATUS_PATH } from "./gateway.ts";
import type { Snapshot } from "./config/compile.ts";
import type { Config } from "./config/schema.ts";
import type { CompiledRoute } from "./handler.ts";
import { canMonitor } from "./monitoring/access.ts";
import { HEALTH_PATH, LIVE_PATH, MONITORING_PREFIX, READY_PATH } from "./monitoring/health.ts";
import { credentialSources, extractCredential } from "./plugins/apikeys/extract.ts";
import type { Access } from "./plugins/types.ts";
import { createContext, type RequestContext } from "./request.ts";
import { isLoopback } from "./net/cidr.ts";
import type { ConnInfo, UpstreamFetch } from "./runtime/types.ts";
import { GatewayError } from "./errors.ts";

export interface ExplainRequest {
  method: string;
  url: string;
  headers: [string, string][];
  /** The caller's address (trustedProxies, X-Forwarded-For, the monitoring rule read it). */
  from: string;
}

export interface PluginDecision {
  plugin: string;
  /** allow: a key was admitted; pass: no credential on a non-mandatory plugin; refuse; not reached. */
  decision: "allow" | "pass" | "refuse" | "not reached";
  clientId?: string;
  status?: number;
  error?: string;
}

export interface Explanation {
  request: { method: string; url: string; from: string };
  /** The route matched, or null. */
  route: string | null;
  /** The gateway's own endpoint that answers instead of a route ("status", "monitoring", "oauth"), or null. */
  endpoint: string | null;
  decisions: PluginDecision[];
  /** The status the gateway answers itself; null when the call would be proxied. */
  status: number | null;
  error: { code: string; message: string; headers: Record<string, string> } | null;
  clientId: string | null;
  /** The backend call: method, full URL and headers (secrets masked); null when none is made. */
  method: string | null;
  target: string | null;
  headers: Record<string, string> | null;
}

/** The upstream client explain compiles with: records the call, never opens a connection. */
export function createRecorder(): { upstreamFetch: () => UpstreamFetch; take(): { url: string; method: string; headers: Headers } | null } {
  let call: { url: string; method: string; headers: Headers } | null = null;
  const fetch: UpstreamFetch = (url, init) => {
    call = { url: String(url), method: init?.method ?? "GET", headers: new Headers(init?.headers) };
    void (init?.body as ReadableStream | undefined)?.cancel?.().catch(() => {});
    return Promise.resolve(new Response(null, { status: 204 }));
  };
  return {
    upstreamFetch: () => fetch,
    take() {
      const c = call;
      call = null;
      return c;
    },
  };
}

export const MASK = "****";
const SECRETISH = /secret|token|passw|pwd|api[-_]?key|access[-_]?key|session|credential|signature|^authorization$|^proxy-authorization$/i;

/** Header, query and cookie names that may carry a credential under this config. */
function credentialNames(config: Config): { headers: Set<string>; query: Set<string> } {
  const headers = new Set<string>();
  const query = new Set<string>(["access_key"]);
  for (const r of config.routes) {
    for (const p of r.plugins) {
      const s = credentialSources(p.config.extractors);
      s.headers.forEach((h) => headers.add(h));
      s.query.forEach((q) => query.add(q));
    }
  }
  return { headers, query };
}

type Names = ReturnType<typeof credentialNames>;

function maskHeader(name: string, value: string, names: Names): string {
  const n = name.toLowerCase();
  // Cookie values are credentials more often than not (sessions): names stay, values go.
  if (n === "cookie") return value.split(";").map((c) => `${c.split("=")[0]!.trim()}=${MASK}`).join("; ");
  if (n === "authorization" || n === "proxy-authorization") {
    const sp = value.indexOf(" ");
    return sp > 0 ? `${value.slice(0, sp)} ${MASK}` : MASK;
  }
  return names.headers.has(n) || SECRETISH.test(n) ? MASK : value;
}

function maskSearch(search: string, names: Names): string {
  if (search.length <= 1) return search;
  return (
    "?" +
    search
      .slice(1)
      .split("&")
      .map((part) => {
        const eq = part.indexOf("=");
        if (eq < 0) return part;
        let name = part.slice(0, eq);
        try {
          name = decodeURIComponent(name.replaceAll("+", " "));
        } catch {
          // A malformed escape cannot name a credential parameter: the name stays as written.
        }
        return names.query.has(name) || SECRETISH.test(name) ? `${part.slice(0, eq)}=${MASK}` : part;
      })
      .join("&")
  );
}

function maskUrl(url: string, names: Names): string {
  const q = url.indexOf("?");
  const h = url.indexOf("#");
  const base = q < 0 ? url : url.slice(0, q);
  const search = q < 0 ? "" : url.slice(q, h > q ? h : url.length);
  // Userinfo in a URL is a credential too (RFC 3986 §3.2.1).
  return base.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, `$1${MASK}@`) + maskSearch(search, names);
}

const PROBES = new Set([LIVE_PATH, READY_PATH, HEALTH_PATH, MONITORING_PREFIX + "metrics"]);
const REFUSAL_HEADERS = ["allow", "www-authenticate", "retry-after"];

export async function explain(snapshot: Snapshot, recorder: ReturnType<typeof createRecorder>, r: ExplainRequest): Promise<Explanation> {
  const names = credentialNames(snapshot.config);
  const parts = snapshot.parts;
  const info: ConnInfo = { remoteAddress: r.from, secure: r.url.startsWith("https:") };
  const req = () => new Request(r.url, { method: r.method, headers: r.headers });
  const out: Explanation = {
    request: { method: r.method, url: maskUrl(r.url, names), from: r.from },
    route: null,
    endpoint: null,
    decisions: [],
    status: null,
    error: null,
    clientId: null,
    method: null,
    target: null,
    headers: null,
  };
  const ctx = createContext(req(), info, parts.trustedProxies, Date.now());
  const read = ctx.method === "GET" || ctx.method === "HEAD";

  // Answered in front of the snapshot (src/gateway.ts), to the callers they let in only.
  if (ctx.pathProblem === null && read && ctx.path === STATUS_PATH) {
    out.endpoint = "status";
    if (!(isLoopback(r.from) || parts.trustedProxies(r.from))) notFound(out);
    else out.status = 200;
    return out;
  }
  if (ctx.pathProblem === null && PROBES.has(ctx.path)) {
    out.endpoint = "monitoring";
    if (!canMonitor(ctx.req, info, snapshot)) notFound(out);
    else if (!read) refusal(out, 405, "ERR_METHOD_NOT_ALLOWED", "Method not allowed", { allow: "GET, HEAD" });
    else out.status = 200;
    return out;
  }
  if (parts.sinks.some((s) => s.matches(ctx))) out.endpoint = "oauth";
  else if (ctx.pathProblem === null) {
    const m = parts.router.match(ctx.host, ctx.path, ctx.method);
    if (m?.kind === "route") {
      out.route = m.route.id;
      out.decisions = await decide(snapshot, m.route, ctx);
      out.clientId = out.decisions.findLast((d) => d.clientId !== undefined)?.clientId ?? null;
    }
  }

  // The real request path; the recorder stands in for the backend.
  recorder.take();
  const res = await snapshot.handle(req(), info);
  const call = recorder.take();
  if (call !== null) {
    out.method = call.method;
    out.target = maskUrl(call.url, names);
    out.headers = {};
    for (const [k, v] of call.headers) out.headers[k] = maskHeader(k, v, names);
    void res.body?.cancel().catch(() => {});
    return out;
  }
  out.status = res.status;
  const code = res.headers.get("otoroshi-error-code");
  let message = res.headers.get("otoroshi-error-msg") ?? "";
  if (code === null) {
    // The OAuth endpoints answer in RFC 6749 §5.2's shape.
    const body = (await res.json().catch(() => null)) as { error?: unknown } | null;
    if (res.status >= 400 && typeof body?.error === "string") message = body.error;
  } else void res.body?.cancel().catch(() => {});
  if (res.status >= 400) {
    const headers: Record<string, string> = {};
    for (const h of REFUSAL_HEADERS) {
      const v = res.headers.get(h);
      if (v !== null) headers[h] = v;
    }
    out.error = { code: code ?? message, message, headers };
  }
  return out;
}

function refusal(out: Explanation, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  out.status = status;
  out.error = { code, message, headers };
}

const notFound = (out: Explanation) => refusal(out, 404, "ERR_ROUTE_NOT_FOUND", "No route found");

/** Each enabled plugin of the route, run in order on its own, as the handler runs them. */
async function decide(snapshot: Snapshot, route: CompiledRoute, ctx: RequestContext): Promise<PluginDecision[]> {
  const plugins = snapshot.config.routes.find((r) => r.id === route.id)?.plugins.filter((p) => p.enabled) ?? [];
  const access: Access = { apikey: null, wipeHeaders: null, wipeQuery: null, wipeCookies: null, setHeaders: [], responseHeaders: [] };
  const out: PluginDecision[] = [];
  let refused = false;
  for (const [i, stage] of route.stages.entries()) {
    const plugin = plugins[i]?.plugin ?? "plugin";
    if (refused) {
      out.push({ plugin, decision: "not reached" });
      continue;
    }
    const before = access.apikey;
    try {
      await stage(ctx, route, access);
      out.push(access.apikey !== before && access.apikey !== null ? { plugin, decision: "allow", clientId: access.apikey.clientId } : { plugin, decision: "pass" });
    } catch (e) {
      if (!(e instanceof GatewayError)) throw e;
      refused = true;
      const d: PluginDecision = { plugin, decision: "refuse", status: e.status, error: e.code };
      // A 403 refuses a key that authenticated (read-only, not authorized here): say whose.
      const ex = plugins[i]?.config.extractors;
      const cred = e.status === 403 && ex ? extractCredential(ctx, ex) : null;
      if (cred !== null && "clientId" in cred) d.clientId = cred.clientId;
      out.push(d);
    }
  }
  return out;
}

/** The human form: one fact a line, the backend's headers indented. */
export function formatExplanation(e: Explanation): string {
  const lines = [`${e.request.method} ${e.request.url}  (from ${e.request.from})`];
  const row = (k: string, v: string) => lines.push(`${k.padEnd(10)} ${v}`);
  if (e.endpoint !== null) row("endpoint", `the gateway's own ${e.endpoint} endpoint answers (no route is consulted)`);
  else row("route", e.route ?? (e.status === 405 ? "none for this method (see Allow)" : "none matches"));
  for (const d of e.decisions) {
    const what = d.decision === "allow"
      ? `allow (client id ${d.clientId})`
      : d.decision === "refuse"
      ? `refuse (${d.status} ${d.error})`
      : d.decision === "pass"
      ? "pass (no credential; the plugin is not mandatory)"
      : "not reached";
    row("plugin", `${d.plugin}: ${what}`);
  }
  row("client id", e.clientId ?? "none");
  if (e.target !== null) {
    row("result", "proxied");
    row("backend", `${e.method} ${e.target}`);
    for (const [k, v] of Object.entries(e.headers ?? {})) lines.push(`${"".padEnd(10)} ${k}: ${v}`);
  } else if (e.error !== null) {
    row("result", `refused: ${e.status} ${e.error.code}${e.error.message && e.error.message !== e.error.code ? ` "${e.error.message}"` : ""}`);
    for (const [k, v] of Object.entries(e.error.headers)) lines.push(`${"".padEnd(10)} ${k}: ${v}`);
  } else row("result", `answered by the gateway: ${e.status}`);
  return lines.join("\n");
}
