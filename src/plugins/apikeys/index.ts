// The Apikeys route plugin: extract → authenticate → authorize → wipe credentials.
import type { ApikeysPluginConfig } from "../../config/schema.ts";
import { type ErrorCode, GatewayError } from "../../errors.ts";
import type { RequestContext } from "../../request.ts";
import type { Access, AccessStage, FailureGuard, QuotaEnforcer, RouteInfo, TokenVerifier } from "../types.ts";
import { authParam } from "../credentials.ts";
import { type Credential, credentialSources, extractCredential } from "./extract.ts";
import type { ApiKeyRecord, ApiKeyRegistry } from "./registry.ts";

export interface ApikeysDeps {
  registry: ApiKeyRegistry;
  /** null when no ClientCredentialService is configured: then no JWT is accepted. */
  verifyToken: TokenVerifier | null;
  guard: FailureGuard | null;
  quotas: QuotaEnforcer | null;
}

// RFC 9110 §15.5.2: a 401 carries a challenge.
const CHALLENGE = 'Basic realm="otoroshi", Bearer realm="otoroshi"';
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export const MSG_NO_APIKEY = "No ApiKey provided";
export const MSG_BAD_APIKEY = "Bad API key";

function missing(): GatewayError {
  return new GatewayError(401, "ERR_APIKEY_MISSING", MSG_NO_APIKEY, { "www-authenticate": CHALLENGE });
}

/** One message for every credential failure, so client ids cannot be enumerated. */
function bad(code: ErrorCode = "ERR_APIKEY_INVALID", bearer = false): GatewayError {
  return new GatewayError(401, code, MSG_BAD_APIKEY, {
    "www-authenticate": bearer ? 'Bearer realm="otoroshi", error="invalid_token"' : CHALLENGE,
  });
}

/** The headers this plugin sets for the backend: the compiler removes them from client requests
 * on every route (headers.ts assertedHeaderSet). */
export function apikeysAssertedHeaders(config: ApikeysPluginConfig): string[] {
  return config.clientIdHeaderName ? [config.clientIdHeaderName] : [];
}

export function createApikeysStage(config: ApikeysPluginConfig, deps: ApikeysDeps): AccessStage {
  const ex = config.extractors;
  const sources = credentialSources(ex);
  const clientIdHeader = config.clientIdHeaderName?.toLowerCase() ?? null;
  // What to wipe is decided now; a request only picks one of these sets. The client id headers
  // are not here: every route removes them (HandlerParts.assertedHeaders).
  const wipeAll: ReadonlySet<string> = new Set(sources.headers);
  const wipeAllAndAuthorization: ReadonlySet<string> = new Set([...wipeAll, "authorization"]);
  const wipeQuery: ReadonlySet<string> | null = sources.query.length ? new Set(sources.query) : null;
  const wipeCookies: ReadonlySet<string> | null = sources.cookies.length ? new Set(sources.cookies) : null;
  const { registry, verifyToken, guard, quotas } = deps;

  /** A promise only when a shared failed-secret limiter must be asked. */
  const authenticate = (cred: Credential, ctx: RequestContext): ApiKeyRecord | Promise<ApiKeyRecord> => {
    const now = ctx.now;
    switch (cred.kind) {
      case "malformed":
        throw bad();
      case "clientId": {
        const key = registry.get(cred.clientId);
        if (!key || !key.allowClientIdOnly) throw bad();
        return key;
      }
      case "secret": {
        const key = registry.checkSecret(cred.clientId, cred.secret, now) ? registry.get(cred.clientId) : undefined;
        if (guard === null) {
          if (!key) throw bad();
          return key;
        }
        // A right secret asks whether its pair is locked out; a wrong one is counted, for unknown
        // ids exactly as for existing ones, so neither the answers nor the limiter tell them apart.
        const wait = key ? guard.retryAfter(cred.clientId, ctx.clientIp, now) : guard.recordFailure(cred.clientId, ctx.clientIp, now);
        const decide = (w: number): ApiKeyRecord => {
          if (w > 0) throw new GatewayError(429, "ERR_TOO_MANY_FAILURES", "Too many failed attempts, retry later", { "retry-after": String(w) });
          if (!key) throw bad();
          return key;
        };
        return typeof wait === "number" ? decide(wait) : wait.then(decide);
      }
      case "otoBearer": {
        // Compared whether or not the id exists, so the time taken does not tell.
        const ok = registry.checkBearer(cred.clientId, cred.bearer, now);
        const key = registry.get(cred.clientId);
        if (!ok || !key) throw bad();
        return key;
      }
      case "jwt": {
        if (!verifyToken) throw bad("ERR_APIKEY_INVALID", true);
        const v = verifyToken(cred.token, ctx);
        if (!v.ok) throw bad(v.reason === "expired" ? "ERR_TOKEN_EXPIRED" : "ERR_APIKEY_INVALID", true);
        const key = registry.get(v.clientId);
        // A key bound to its own key pair only accepts tokens signed with it.
        if (!key || (key.signKeyPair !== undefined && key.signKeyPair !== v.kid)) throw bad("ERR_APIKEY_INVALID", true);
        return key;
      }
    }
  };

  const admit = (key: ApiKeyRecord, cred: Credential, ctx: RequestContext, route: RouteInfo, access: Access): void | Promise<void> => {
    if (!registry.isActive(key, ctx.now)) throw bad("ERR_APIKEY_INVALID", cred.kind === "jwt");
    if (!registry.authorizedOn(key, route)) throw new GatewayError(403, "ERR_APIKEY_UNAUTHORIZED", "API key not authorized on this route");
    if (key.readOnly && !SAFE_METHODS.has(ctx.method)) throw new GatewayError(403, "ERR_FORBIDDEN", "API key is read-only");
    access.apikey = key;
    if (config.wipeBackendRequest) {
      access.wipeHeaders = wipeAll;
      access.wipeQuery = wipeQuery;
      access.wipeCookies = wipeCookies;
      if (cred.kind === "jwt") {
        // The backend receives the access token in Authorization, wherever the client put it,
        // so it can verify it against the JWKS.
        if (cred.source.name !== "authorization") access.setHeaders.push(["authorization", `Bearer ${cred.token}`]);
      } else {
        const authz = ctx.req.headers.get("authorization");
        // Only credentials of ours are wiped; another Authorization (the backend's own) passes.
        if (authz !== null && (authParam(authz, "basic") !== null || authParam(authz, "bearer")?.startsWith("otoapk_"))) access.wipeHeaders = wipeAllAndAuthorization;
      }
    }
    if (clientIdHeader) access.setHeaders.push([clientIdHeader, key.clientId]);
    if (quotas) {
      // Synchronous for keys without quotas and for the in-memory store: no await on the hot path.
      const headers = quotas.consume(key.clientId, key, ctx.now);
      if (Array.isArray(headers)) access.responseHeaders.push(...headers);
      else return headers.then((h) => void access.responseHeaders.push(...h));
    }
  };

  return (ctx, route, access) => {
    const cred = extractCredential(ctx, ex);
    if (!cred) {
      if (config.mandatory) throw missing();
      return;
    }
    const key = authenticate(cred, ctx);
    return key instanceof Promise ? key.then((k) => admit(k, cred, ctx, route, access)) : admit(key, cred, ctx, route, access);
  };
}
