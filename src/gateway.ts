// The Hono app in front of the snapshots: the status endpoint, then everything else goes to
// the current snapshot, read once per request.
import { Hono } from "hono";
import type { ConfigStore } from "./config/store.ts";
import { errorResponse, GatewayError } from "./errors.ts";
import { renderError } from "./handler.ts";
import { createHealthEndpoints, type HealthDeps, Lifecycle } from "./monitoring/health.ts";
import { METRICS_PATH, metricsEndpoint } from "./monitoring/metrics-endpoint.ts";
import { observed, type RequestRecord } from "./monitoring/observe.ts";
import { isLoopback } from "./net/cidr.ts";
import { processHealth } from "./proxy/health.ts";
import { splitUrl } from "./request.ts";
import { canonicalPath } from "./router/path.ts";
import type { ConnInfo } from "./runtime/types.ts";
import { CHALLENGE_PREFIX, type ChallengeStore } from "./tls/acme/challenges.ts";

type Env = { Bindings: { info: ConnInfo } };

export const STATUS_PATH = "/.well-known/otoroshi/status";

export function createGateway(
  store: ConfigStore,
  extraStatus: () => Record<string, unknown> = () => ({}),
  challenges: ChallengeStore | null = null,
  // In process (tests) there is no listener to wait for: ready from the start.
  monitoring: HealthDeps = { lifecycle: new Lifecycle(true) },
): (req: Request, info: ConnInfo) => Promise<Response> {
  const health = createHealthEndpoints(store, monitoring);
  const app = new Hono<Env>();
  app.on(["GET", "HEAD"], STATUS_PATH, (c) => {
    const info = c.env.info;
    const snap = store.current();
    const trusted = isLoopback(info.remoteAddress) || snap.trustedProxies(info.remoteAddress);
    if (!trusted) return errorResponse(new GatewayError(404, "ERR_ROUTE_NOT_FOUND", "No route found"), c.req.method);
    return c.json({ ...store.status(), upstreams: processHealth.status(), ...extraStatus() }, 200, { "cache-control": "no-store" });
  });
  app.all("*", (c) => store.current().handle(c.req.raw, c.env.info));
  app.onError((e, c) => renderError(e, { method: c.req.method, path: c.req.path, host: "" }));
  // The proxy path skips Hono's router (~4 µs a request, measured in bench/ablation.sh): only
  // URLs that can be the status endpoint go through the app. Every spelling of its path either
  // names "status" or carries a '%', so other URLs are never canonicalised here; the same holds
  // for the monitoring endpoints (src/monitoring/health.ts) and "monitoring".
  const front = (req: Request, info: ConnInfo, rec: RequestRecord) => {
    const url = req.url;
    if (url.includes("status") || url.includes("monitoring") || url.includes("%")) {
      const raw = splitUrl(url).path;
      const path = canonicalPath(raw);
      if (path === STATUS_PATH) {
        rec.internal = true;
        return app.fetch(raw === STATUS_PATH ? req : new Request(new URL(STATUS_PATH, url), req), { info }) as Promise<Response>;
      }
      const answer = path === METRICS_PATH ? metricsEndpoint(req, info, store) : health.answer(req, info, path);
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
