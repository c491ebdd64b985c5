// The probes under /.well-known/otoroshi/monitoring/: live (the process serves), ready (the
// config is loaded and the listeners are up; 503 from SIGTERM on, so a load balancer or
// Kubernetes stops sending new requests before the listeners close) and health (a JSON
// summary: generation, uptime, the shared store, the targets). Answered before routing, on
// every host, to the callers src/monitoring/access.ts lets in; everyone else gets the 404 of a
// path no route serves.
import type { ConfigStore } from "../config/store.ts";
import type { Snapshot } from "../config/compile.ts";
import { errorResponse, GatewayError } from "../errors.ts";
import type { QuotaStatus } from "../limits/quotas.ts";
import type { PathProblem } from "../router/path.ts";
import type { ConnInfo } from "../runtime/types.ts";
import { canMonitor } from "./access.ts";
import { gauges, type TargetHealth } from "./gauges.ts";

export const MONITORING_PREFIX = "/.well-known/otoroshi/monitoring/";
export const LIVE_PATH = MONITORING_PREFIX + "live";
export const READY_PATH = MONITORING_PREFIX + "ready";
export const HEALTH_PATH = MONITORING_PREFIX + "health";

/** Where the process is in its life: starting → ready → stopping. */
export class Lifecycle {
  readonly startedAt: number;
  private state: "starting" | "ready" | "stopping";

  constructor(ready = false, now = Date.now()) {
    this.startedAt = now;
    this.state = ready ? "ready" : "starting";
  }

  /** The config is loaded and every listener is up. */
  markReady(): void {
    if (this.state === "starting") this.state = "ready";
  }

  /** SIGTERM arrived: not ready again, whatever happens next. */
  markStopping(): void {
    this.state = "stopping";
  }

  get phase(): "starting" | "ready" | "stopping" {
    return this.state;
  }
}

export interface HealthDeps {
  lifecycle: Lifecycle;
  /** The quota counters' store (its reachability); absent: none to report. */
  store?: () => QuotaStatus;
  clock?: () => number;
}

export interface TargetReport {
  route: string;
  target: string;
  /** "unknown": the health registry has no state for it; it is called as if healthy. */
  status: "healthy" | "unhealthy" | "unknown";
}

/** Every target of every enabled route, with what the health checks say of it. */
export function targetReport(snapshot: Pick<Snapshot, "config">, checked: readonly TargetHealth[]): TargetReport[] {
  const known = new Map<string, boolean>();
  for (const t of checked) known.set(`${t.route}\u0000${t.target}`, t.healthy);
  const out: TargetReport[] = [];
  for (const r of snapshot.config.routes) {
    if (!r.enabled) continue;
    for (const t of r.backend.targets) {
      // As the health registry names it (proxy/retry.ts): IPv6 literals in brackets.
      const host = t.hostname.includes(":") && !t.hostname.startsWith("[") ? `[${t.hostname}]` : t.hostname;
      const target = `${host}:${t.port ?? (t.tls ? 443 : 80)}`;
      const h = known.get(`${r.id}\u0000${target}`);
      out.push({ route: r.id, target, status: h === undefined ? "unknown" : h ? "healthy" : "unhealthy" });
    }
  }
  return out;
}

const NO_STORE = { "content-type": "application/json", "cache-control": "no-store" };

function json(method: string, status: number, body: unknown): Response {
  // RFC 9110 §9.3.2: HEAD gets the same status and fields, without content.
  return new Response(method === "HEAD" ? null : JSON.stringify(body), { status, headers: NO_STORE });
}

export interface HealthEndpoints {
  /** The answer for a monitoring path (canonical), or null when `path` is none of these. */
  answer(req: Request, info: ConnInfo, path: string | PathProblem): Response | null;
}

export function createHealthEndpoints(configStore: ConfigStore, deps: HealthDeps): HealthEndpoints {
  const clock = deps.clock ?? Date.now;
  const health = (): [number, unknown] => {
    const snap = configStore.current();
    const quotas = deps.store?.() ?? null;
    const targets = targetReport(snap, gauges.targetHealth());
    const down = targets.filter((t) => t.status === "unhealthy").length;
    const storeDown = quotas !== null && !quotas.healthy;
    // Unhealthy: the gateway refuses what it should serve — quota-checked calls get 503 (the
    // store is down and storeUnavailable is "closed"), or no target at all can be reached.
    // Degraded: it serves, with less (a target down, quotas not enforced).
    const closed = storeDown && snap.config.server.storeUnavailable === "closed";
    const allDown = targets.length > 0 && down === targets.length;
    const status = closed || allDown ? "unhealthy" : storeDown || down > 0 ? "degraded" : "healthy";
    return [
      status === "unhealthy" ? 503 : 200,
      {
        status,
        ready: deps.lifecycle.phase === "ready",
        generation: snap.generation,
        uptime: Math.max(0, Math.round(clock() - deps.lifecycle.startedAt) / 1000),
        store: quotas === null ? null : { kind: quotas.store, reachable: quotas.healthy, onUnavailable: snap.config.server.storeUnavailable },
        targets: { healthy: targets.filter((t) => t.status === "healthy").length, unhealthy: down, unknown: targets.filter((t) => t.status === "unknown").length, list: targets },
      },
    ];
  };
  return {
    answer(req, info, path) {
      if (path !== LIVE_PATH && path !== READY_PATH && path !== HEALTH_PATH) return null;
      const method = req.method;
      if (!canMonitor(req, info, configStore.current())) return errorResponse(new GatewayError(404, "ERR_ROUTE_NOT_FOUND", "No route found"), method);
      if (method !== "GET" && method !== "HEAD") return errorResponse(new GatewayError(405, "ERR_METHOD_NOT_ALLOWED", "Method not allowed", { allow: "GET, HEAD" }), method);
      if (path === LIVE_PATH) return json(method, 200, { status: "live" });
      if (path === READY_PATH) {
        const phase = deps.lifecycle.phase;
        return json(method, phase === "ready" ? 200 : 503, { status: phase, generation: configStore.current().generation });
      }
      const [status, body] = health();
      return json(method, status, body);
    },
  };
}
