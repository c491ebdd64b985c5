// Prometheus metrics (text exposition format 0.0.4). Every label value comes from the config
// (route ids, target names, key algorithms) or a fixed set (methods, status numbers, kinds), so a
// client can never create a series. Counters live for the process (a reload keeps them: a
// counter that went back to zero would read as a restart); per-route objects are made at compile
// time, so counting a request is a few array and Map operations (docs/operations.md).
import type { ConfigStore } from "../config/store.ts";
import { gauges } from "./gauges.ts";
import { targetReport } from "./health.ts";
import { processMetrics } from "./process-metrics.ts";

export const METRICS_PATH = "/.well-known/otoroshi/monitoring/metrics";

/** Requests that matched no route; answered by the OAuth endpoints; by the gateway's own endpoints. */
export const UNMATCHED = "_unmatched";
export const OAUTH = "_oauth";
export const INTERNAL = "_internal";

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"];
const METHOD_INDEX = new Map(METHODS.map((m, i) => [m, i]));
const METHOD_LABELS = [...METHODS, "other"];
/** Seconds; the usual client-library buckets, which cover a gateway hop and slow backends. */
export const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function inc<K>(m: Map<K, number>, k: K): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

export class RouteMetrics {
  /** Per method index: status → count. */
  readonly requests: Map<number, number>[] = METHOD_LABELS.map(() => new Map());
  /** Non-cumulative bucket counts; the last slot is +Inf. */
  readonly buckets = new Float64Array(BUCKETS.length + 1);
  sum = 0;
  count = 0;
  readonly upstreamErrors = new Map<string, number>();
  readonly authFailures = new Map<string, number>();
  readonly route: string;
  constructor(route: string) {
    this.route = route;
  }

  observe(method: string, status: number, seconds: number): void {
    inc(this.requests[METHOD_INDEX.get(method) ?? 9]!, status);
    let i = 0;
    while (i < BUCKETS.length && seconds > BUCKETS[i]!) i++;
    this.buckets[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

const routes = new Map<string, RouteMetrics>();
const quotaRejections = new Map<string, number>();
const tokensIssued = new Map<string, number>();
const clientRequests = new Map<string, number>();
const reloads = { success: 0, failure: 0 };
let inflight = 0;

export const metrics = {
  /** The counters of a route (or of UNMATCHED, OAUTH, INTERNAL); compile time, not per request. */
  route(id: string): RouteMetrics {
    let r = routes.get(id);
    if (r === undefined) routes.set(id, r = new RouteMetrics(id));
    return r;
  },
  started(): void {
    inflight++;
  },
  ended(): void {
    if (inflight > 0) inflight--;
  },
  upstreamError(r: RouteMetrics, kind: string): void {
    inc(r.upstreamErrors, kind);
  },
  authFailure(r: RouteMetrics, reason: string): void {
    inc(r.authFailures, reason);
  },
  quotaRejected(kind: string): void {
    inc(quotaRejections, kind);
  },
  tokenIssued(alg: string): void {
    inc(tokensIssued, alg);
  },
  /** Only with server.monitoring.perClientMetrics: the ids are the config's own. */
  clientRequest(clientId: string): void {
    inc(clientRequests, clientId);
  },
  reloaded(ok: boolean): void {
    if (ok) reloads.success++;
    else reloads.failure++;
  },
};

// Exposition format: `\`, `"` and newline are escaped in label values.
function esc(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : v;
}
function num(n: number): string {
  return Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : n < 0 ? "-Inf" : "NaN";
}

class Out {
  text = "";
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): void {
    this.text += `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
  }
  sample(name: string, labels: [string, string][], value: number): void {
    const l = labels.length ? `{${labels.map(([k, v]) => `${k}="${esc(v)}"`).join(",")}}` : "";
    this.text += `${name}${l} ${num(value)}\n`;
  }
}

/** The whole exposition, for GET /.well-known/otoroshi/monitoring/metrics. */
export function renderMetrics(store: ConfigStore): string {
  const snap = store.current();
  const o = new Out();
  const all = [...routes.values()];
  o.family("otoroshi_requests_total", "counter", "Requests answered, by route id (_unmatched: no route; _oauth: OAuth endpoints; _internal: the gateway's own endpoints), method and status.");
  for (const r of all) {
    r.requests.forEach((byStatus, i) => {
      for (const [status, n] of byStatus) o.sample("otoroshi_requests_total", [["route", r.route], ["method", METHOD_LABELS[i]!], ["status", String(status)]], n);
    });
  }
  o.family("otoroshi_request_duration_seconds", "histogram", "Time from the request's arrival to the end of its response, by route.");
  for (const r of all) {
    if (r.count === 0) continue;
    let cum = 0;
    BUCKETS.forEach((le, i) => {
      cum += r.buckets[i]!;
      o.sample("otoroshi_request_duration_seconds_bucket", [["route", r.route], ["le", String(le)]], cum);
    });
    o.sample("otoroshi_request_duration_seconds_bucket", [["route", r.route], ["le", "+Inf"]], r.count);
    o.sample("otoroshi_request_duration_seconds_sum", [["route", r.route]], r.sum);
    o.sample("otoroshi_request_duration_seconds_count", [["route", r.route]], r.count);
  }
  o.family("otoroshi_upstream_errors_total", "counter", "Backend calls that failed, by route and kind (refused, timeout, error, busy, no_target, no_healthy_target).");
  for (const r of all) for (const [kind, n] of r.upstreamErrors) o.sample("otoroshi_upstream_errors_total", [["route", r.route], ["kind", kind]], n);
  o.family("otoroshi_inflight_requests", "gauge", "Requests being answered now.");
  o.sample("otoroshi_inflight_requests", [], inflight);
  o.family("otoroshi_websockets_open", "gauge", "WebSocket connections open now.");
  o.sample("otoroshi_websockets_open", [], gauges.websocketsOpen);
  o.family("otoroshi_auth_failures_total", "counter", "Requests refused for their credentials, by route and reason.");
  for (const r of all) for (const [reason, n] of r.authFailures) o.sample("otoroshi_auth_failures_total", [["route", r.route], ["reason", reason]], n);
  o.family("otoroshi_quota_rejections_total", "counter", "Requests refused by a limit, by kind (quota: an API key's quotas; failed_auth: too many failed secrets).");
  for (const [kind, n] of quotaRejections) o.sample("otoroshi_quota_rejections_total", [["kind", kind]], n);
  o.family("otoroshi_tokens_issued_total", "counter", "Access tokens issued by the OAuth2 token endpoint, by signing algorithm.");
  for (const [alg, n] of tokensIssued) o.sample("otoroshi_tokens_issued_total", [["alg", alg]], n);
  if (snap.config.server.monitoring?.perClientMetrics) {
    o.family("otoroshi_client_requests_total", "counter", "Requests authenticated with an API key, by client id (server.monitoring.perClientMetrics).");
    for (const [id, n] of clientRequests) o.sample("otoroshi_client_requests_total", [["client_id", id]], n);
  }
  o.family("otoroshi_target_healthy", "gauge", "1 when the target is considered healthy (or not checked), else 0.");
  // A target no health check reports on is tried as healthy: 1 (src/monitoring/health.ts).
  for (const t of targetReport(snap, gauges.targetHealth())) o.sample("otoroshi_target_healthy", [["route", t.route], ["target", t.target]], t.status === "unhealthy" ? 0 : 1);
  const certs = gauges.certificates();
  if (certs.length) {
    o.family("otoroshi_certificate_expiry_timestamp_seconds", "gauge", "When each certificate the HTTPS listener serves expires, Unix seconds.");
    for (const c of certs) if (c.notAfter !== null) o.sample("otoroshi_certificate_expiry_timestamp_seconds", [["name", c.name], ["source", c.source]], c.notAfter / 1000);
    o.family("otoroshi_certificate_renewal_failing", "gauge", "1 when the last ACME order or renewal for the name failed, else 0.");
    for (const c of certs) if (c.source === "acme") o.sample("otoroshi_certificate_renewal_failing", [["name", c.name]], c.failing ? 1 : 0);
  }
  o.family("otoroshi_config_generation", "gauge", "Generation of the config being served.");
  o.sample("otoroshi_config_generation", [], snap.generation);
  o.family("otoroshi_config_reloads_total", "counter", "Config reloads applied (success) or rejected (failure).");
  o.sample("otoroshi_config_reloads_total", [["result", "success"]], reloads.success);
  o.sample("otoroshi_config_reloads_total", [["result", "failure"]], reloads.failure);
  o.family("otoroshi_config_last_reload_timestamp_seconds", "gauge", "When the config being served was loaded, Unix seconds.");
  o.sample("otoroshi_config_last_reload_timestamp_seconds", [], Date.parse(snap.loadedAt) / 1000);
  return o.text + processMetrics();
}
