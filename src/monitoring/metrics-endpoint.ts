// GET /.well-known/otoroshi/monitoring/metrics: the Prometheus exposition (metrics.ts), to the
// callers src/monitoring/access.ts lets in; everyone else gets the 404 of a path no route serves.
import type { ConfigStore } from "../config/store.ts";
import { errorResponse, GatewayError } from "../errors.ts";
import type { ConnInfo } from "../runtime/types.ts";
import { canMonitor } from "./access.ts";
import { METRICS_PATH, renderMetrics } from "./metrics.ts";

export { METRICS_PATH };

// The text format's media type (Prometheus exposition format 0.0.4).
const HEADERS = { "content-type": "text/plain; version=0.0.4; charset=utf-8", "cache-control": "no-store" };

export function metricsEndpoint(req: Request, info: ConnInfo, store: ConfigStore): Response {
  const method = req.method;
  if (!canMonitor(req, info, store.current())) return errorResponse(new GatewayError(404, "ERR_ROUTE_NOT_FOUND", "No route found"), method);
  if (method !== "GET" && method !== "HEAD") return errorResponse(new GatewayError(405, "ERR_METHOD_NOT_ALLOWED", "Method not allowed", { allow: "GET, HEAD" }), method);
  return new Response(method === "HEAD" ? null : renderMetrics(store), { status: 200, headers: HEADERS });
}
