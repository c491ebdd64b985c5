// Who may call the gateway's monitoring endpoints (live, ready, health, metrics): the status
// endpoint's rule — loopback and server.trustedProxies — plus anyone presenting
// server.monitoring.accessKey, as `Authorization: Bearer <key>` (RFC 6750 §2.1) or Otoroshi's
// `access_key` query parameter. Everyone else is answered like a path no route serves, so the
// endpoints cannot be discovered; the caller learns nothing about why.
import { isLoopback } from "../net/cidr.ts";
import type { AddressMatcher } from "../net/cidr.ts";
import { safeEqual } from "../plugins/secrets.ts";
import { splitUrl } from "../request.ts";
import type { ConnInfo } from "../runtime/types.ts";
import type { Config } from "../config/schema.ts";

/** What the rule reads from a snapshot (the current one: a reload changes it at once). */
export interface MonitoringPolicy {
  readonly trustedProxies: AddressMatcher;
  readonly config: Pick<Config, "server">;
}

/** The key this request presents, or null. Both places are read: either one may carry it. */
function presented(req: Request): string[] {
  const keys: string[] = [];
  const auth = req.headers.get("authorization");
  // RFC 9110 §11.1: the scheme name is case-insensitive.
  if (auth !== null && auth.length > 7 && auth.slice(0, 7).toLowerCase() === "bearer ") keys.push(auth.slice(7).trim());
  const search = splitUrl(req.url).search;
  if (search.includes("access_key")) {
    for (const v of new URLSearchParams(search).getAll("access_key")) keys.push(v);
  }
  return keys;
}

/**
 * True when the caller may read the monitoring endpoints. The key is compared in constant time
 * (safeEqual); a wrong one counts for nothing and is never logged.
 */
export function canMonitor(req: Request, info: ConnInfo, snapshot: MonitoringPolicy): boolean {
  if (isLoopback(info.remoteAddress) || snapshot.trustedProxies(info.remoteAddress)) return true;
  const key = snapshot.config.server.monitoring?.accessKey;
  if (key === undefined) return false;
  let ok = false;
  // Every presented value is compared (no early exit): the time does not say which one matched.
  for (const k of presented(req)) ok = safeEqual(k, key) || ok;
  return ok;
}
