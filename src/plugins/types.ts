// Contracts between the gateway and plugins. Plugins are factories run at compile time; what
// they return only reads at request time.
import type { RequestContext } from "../request.ts";
import type { ApiKeyRecord } from "./apikeys/registry.ts";

/** What an access stage decided for a request that may proceed. */
export interface Access {
  apikey: ApiKeyRecord | null;
  /** Lower-cased credential header names to remove before calling the backend (sets built at
   * compile time: a stage assigns one, never builds one per request). The headers the gateway
   * asserts are removed on every route anyway (HandlerParts.assertedHeaders). */
  wipeHeaders: ReadonlySet<string> | null;
  wipeQuery: ReadonlySet<string> | null;
  wipeCookies: ReadonlySet<string> | null;
  /** Headers the gateway sets for the backend (after wiping). */
  setHeaders: [string, string][];
  /** Headers added to the client's response (quota counters). */
  responseHeaders: [string, string][];
}

export interface RouteInfo {
  readonly id: string;
  readonly groups: ReadonlySet<string>;
}

/** Returns a promise only when it has to wait (e.g. a shared quota store): most requests stay synchronous. */
export type AccessStage = (ctx: RequestContext, route: RouteInfo, access: Access) => void | Promise<void>;

/** Verifies an access token issued by this gateway. */
export type TokenVerifier = (token: string, ctx: RequestContext) => { ok: true; clientId: string; kid: string } | { ok: false; reason: string };

/**
 * Limits failed secret checks per (client id, source address), known and unknown ids alike —
 * see docs/security.md. The secret is checked first; then a right one asks retryAfter and a
 * wrong one recordFailure, so a failure is counted and checked in one step (exact when many
 * attempts run at once against a shared store). Promises only when a shared store is asked;
 * they reject with LimiterUnavailable when it cannot answer and storeUnavailable is "closed".
 */
export interface FailureGuard {
  /** Seconds to wait when this pair is locked out, else 0. */
  retryAfter(clientId: string, ip: string, now: number): number | Promise<number>;
  /** Counts one failure unless the pair is already locked out; the seconds to wait when it
   * was (the failure is then not counted), else 0. */
  recordFailure(clientId: string, ip: string, now: number): number | Promise<number>;
}

/** Per-key quotas; returns the headers to add to a successful response, or throws a 429 GatewayError. */
export interface QuotaEnforcer {
  consume(clientId: string, key: import("./apikeys/registry.ts").ApiKeyRecord, now: number): Promise<[string, string][]> | [string, string][];
}
