// The front door: the gateway's own endpoints (ACME challenges, status, monitoring), answered on
// the canonical path before any route; everything else goes to the current snapshot, read once
// per request.
import type { ConfigStore } from "./config/store.ts";
import { errorResponse, GatewayError } from "./errors.ts";
import { createHealthEndpoints, type HealthDeps, Lifecycle } from "./monitoring/health.ts";
import { METRICS_PATH, metricsEndpoint } from "./monitoring/metrics-endpoint.ts";
import { observed, type RequestRecord } from "./monitoring/observe.ts";
import { isLoopback } from "./net/cidr.ts";
import { processHealth } from "./proxy/health.ts";
import { splitUrl } from "./request.ts";
import { canonicalPath } from "./router/path.ts";
import type { ConnInfo } from "./runtime/types.ts";
import { CHALLENGE_PREFIX, type ChallengeStore } from "./tls/acme/challenges.ts";

export const STATUS_PATH = "/.well-known/otoroshi/status";

export function createGateway(
  store: ConfigStore,
  extraStatus: () => Record<string, unknown> = () => ({}),
  challenges: ChallengeStore | null = null,
  // In process (tests) there is no listener to wait for: ready from the start.
  monitoring: HealthDeps = { lifecycle: new Lifecycle(true) },
): (req: Request, info: ConnInfo) => Promise<Response> {
  const health = createHealthEndpoints(store, monitoring);
  // The status endpoint: GET and HEAD from loopback or a trusted proxy; anyone else gets the
  // ordinary 404, so it is invisible. Other methods on its path go to the routes like any path.
  const status = (req: Request, info: ConnInfo): Response | null => {
    if (req.method !== "GET" && req.method !== "HEAD") return null;
    const trusted = isLoopback(info.remoteAddress) || store.current().trustedProxies(info.remoteAddress);
    if (!trusted) return errorResponse(new GatewayError(404, "ERR_ROUTE_NOT_FOUND", "No route found"), req.method);
    const res = Response.json({ ...store.status(), upstreams: processHealth.status(), ...extraStatus() }, { headers: { "cache-control": "no-store" } });
    // RFC 9110 §9.3.2: HEAD gets the fields of GET without the content.
    return req.method === "HEAD" ? new Response(null, { headers: res.headers }) : res;
  };
  // Every spelling of these paths either names "status" or "monitoring" or carries a '%', so other
  // URLs are never canonicalised here (the proxy path stays as cheap as it was).
  const front = (req: Request, info: ConnInfo, rec: RequestRecord) => {
    const url = req.url;
    if (url.includes("status") || url.includes("monitoring") || url.includes("%")) {
      const path = canonicalPath(splitUrl(url).path);
      const answer = path === STATUS_PATH ? status(req, info) : path === METRICS_PATH ? metricsEndpoint(req, info, store) : health.answer(req, info, path);
      if (answer !== null) {
        rec.internal = true;
        return Promise.resolve(answer);
      }
    }
    return store.current().handle(req, info, rec);
  };
  // Every request, whoever answers it, gets a request id, an access line and its counts.
  const perClient = () => store.current().config.server.monitoring?.perClientMetrics === true;
  if (!challenges) return observed(front, perClient);
  // ACME HTTP-01 (RFC 8555 §8.3) is answered before routing, on every host and both listeners:
  // no route, redirect or credential check may stand between the CA and the token.
  return observed((req, info, rec) => {
    if (req.url.includes(CHALLENGE_PREFIX)) {
      const path = new URL(req.url).pathname;
      if (path.startsWith(CHALLENGE_PREFIX)) {
        rec.internal = true;
        return Promise.resolve(challenges.answer(req.method, path));
      }
    }
    return front(req, info, rec);
  }, perClient);
}
