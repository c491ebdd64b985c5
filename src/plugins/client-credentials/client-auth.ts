// Client authentication for the token and introspection endpoints (RFC 6749 §2.3.1):
// client_secret_basic or client_secret_post, never both in one request.
import type { RequestContext } from "../../request.ts";
import type { ApiKeyRecord, ApiKeyRegistry } from "../apikeys/registry.ts";
import { authParam, decodeBase64Text, formDecode } from "../credentials.ts";
import { LimiterUnavailable } from "../../limits/failures.ts";
import type { FailureGuard } from "../types.ts";
import type { Params } from "./body.ts";
import { badRequest, OAuthError } from "./errors.ts";

export interface ClientAuthDeps {
  registry: ApiKeyRegistry;
  guard: FailureGuard | null;
}

const CHALLENGE = { "www-authenticate": 'Basic realm="otoroshi"' };
// One description for unknown client, wrong secret, disabled and expired keys, so a caller
// cannot tell which client ids exist.
const FAILED = "client authentication failed";

interface Candidate {
  id: string;
  secret: string;
}

/** Authenticates the calling client or throws the RFC 6749 §5.2 refusal; a promise only when
 * the failed-secret limiter is shared (server.store). */
export function authenticateClient(ctx: RequestContext, params: Params, deps: ClientAuthDeps): ApiKeyRecord | Promise<ApiKeyRecord> {
  const basic = authParam(ctx.req.headers.get("authorization"), "basic");
  const bodyId = params.get("client_id");
  const bodySecret = params.get("client_secret");
  // RFC 6749 §5.2: with Basic, a refusal is a 401 carrying the Basic challenge.
  const refuse = basic !== null ? CHALLENGE : {};

  let candidates: Candidate[];
  if (basic !== null) {
    // RFC 6749 §2.3.1: "MUST NOT use more than one authentication method in each request".
    if (bodySecret !== undefined) throw badRequest("more than one client authentication method");
    candidates = basicCandidates(basic);
    if (candidates.length === 0) throw new OAuthError(401, "invalid_client", FAILED, refuse);
    // RFC 6749 §3.2.1 lets a client repeat its own client_id in the body; another id is a conflict.
    if (bodyId !== undefined && !candidates.some((c) => c.id === bodyId)) {
      throw badRequest("client_id in the body differs from the Authorization header");
    }
  } else {
    if (bodyId === undefined || bodySecret === undefined) {
      throw new OAuthError(401, "invalid_client", "client authentication required", CHALLENGE);
    }
    candidates = [{ id: bodyId, secret: bodySecret }];
  }

  const { registry, guard } = deps;
  const now = ctx.now;
  // Every candidate is checked (constant time each) so the work does not depend on which matched.
  let matched: Candidate | undefined;
  for (const c of candidates) if (registry.checkSecret(c.id, c.secret, now) && matched === undefined) matched = c;
  const finish = (waits: readonly number[]): ApiKeyRecord => {
    const wait = Math.max(0, ...waits);
    if (wait > 0) throw new OAuthError(429, "invalid_client", "too many failed attempts, retry later", { ...refuse, "retry-after": String(Math.ceil(wait)) });
    if (matched === undefined) throw new OAuthError(401, "invalid_client", FAILED, refuse);
    const key = registry.get(matched.id);
    if (key === undefined || !registry.isActive(key, now)) throw new OAuthError(401, "invalid_client", FAILED, refuse);
    return key;
  };
  if (guard === null) return finish([]);
  // A right secret asks whether its pair is locked out; a wrong one is counted, for unknown ids
  // exactly as for existing ones, so neither the answers nor the limiter tell them apart.
  const ids = [...new Set(candidates.map((c) => c.id))];
  const waits = ids.map((id) => (matched === undefined ? guard.recordFailure(id, ctx.clientIp, now) : guard.retryAfter(id, ctx.clientIp, now)));
  if (!waits.some((w) => w instanceof Promise)) return finish(waits as number[]);
  return Promise.all(waits).then(finish, (e: unknown) => {
    // The shared limiter is down and server.storeUnavailable is "closed".
    if (e instanceof LimiterUnavailable) throw new OAuthError(503, "temporarily_unavailable", "try again later");
    throw e;
  });
}

/**
 * RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding. Python's
 * authlib (and Otoroshi itself, W10) send them raw, so the raw pair is tried as well; a secret
 * with '%' or '+' then works from both kinds of client.
 */
function basicCandidates(credentials: string): Candidate[] {
  const decoded = decodeBase64Text(credentials);
  if (decoded === null) return [];
  const colon = decoded.indexOf(":");
  if (colon <= 0) return [];
  const rawId = decoded.slice(0, colon);
  const rawSecret = decoded.slice(colon + 1);
  const out: Candidate[] = [];
  const id = formDecode(rawId);
  const secret = formDecode(rawSecret);
  if (id !== null && secret !== null && id !== "") out.push({ id, secret });
  if (out.length === 0 || id !== rawId || secret !== rawSecret) out.push({ id: rawId, secret: rawSecret });
  return out;
}
