// The global ClientCredentialService plugin: an OAuth2 authorization server for the client
// credentials grant on the hosts `domain` matches. It runs as a sink, before routes, so a
// catch-all route can no longer hide it (Otoroshi W14).
import { Hono } from "hono";
import type { ClientCredentialServiceConfig } from "../../config/schema.ts";
import type { Sink } from "../../handler.ts";
import type { Keyring } from "../../keys/keyring.ts";
import { log } from "../../log.ts";
import { type RequestContext, withCanonicalUrl } from "../../request.ts";
import type { ApiKeyRegistry } from "../apikeys/registry.ts";
import type { FailureGuard, TokenVerifier } from "../types.ts";
import { introspectEndpoint } from "./introspect.ts";
import { compileDomain, metadataPaths } from "./issuer.ts";
import { INTROSPECT_PATH, JWKS_PATH, jwksResponder, metadataResponder, OAUTH_PREFIX, TOKEN_PATH } from "./metadata.ts";
import { noStoreJson, OAuthError, renderOAuthError } from "./errors.ts";
import { tokenEndpoint } from "./token.ts";
import { createVerifier } from "./verify.ts";

export interface ClientCredentialDeps {
  registry: ApiKeyRegistry;
  /** The default key pair and every `jwt-sign-keypair` target; nothing else. */
  signingKeys: Keyring;
  guard: FailureGuard | null;
  /** Every API key's allowed scopes, for RFC 8414 `scopes_supported`; omitted when empty. */
  scopes?: readonly string[];
}

export type ClientCredentialService = Sink & { verifyToken: TokenVerifier };

type Env = { Bindings: { ctx: RequestContext } };

const METADATA_PATH = "/.well-known/oauth-authorization-server";

export function createClientCredentialService(config: ClientCredentialServiceConfig, deps: ClientCredentialDeps): ClientCredentialService {
  const hostMatches = compileDomain(config.domain);
  const verifier = createVerifier(config, deps.signingKeys, hostMatches);
  const jwks = jwksResponder(deps.signingKeys);
  const metadata = metadataResponder(config.issuer, [...new Set(deps.scopes ?? [])].sort());
  const tokenDeps = { config, signingKeys: deps.signingKeys, registry: deps.registry, guard: deps.guard };
  const introspectDeps = { maxBodySize: config.maxBodySize, verifier, registry: deps.registry, guard: deps.guard };

  // strict: false — a trailing slash does not change the match (W13). Hono answers HEAD with
  // the GET handler minus the body, which is what RFC 9110 §9.3.2 asks of HEAD.
  const app = new Hono<Env>({ strict: false });

  // RFC 6749 §3.1 / §3.2 require TLS; checked first so it covers every endpoint (Otoroshi does too).
  app.use("*", async (c, next) => {
    if (config.secure && !c.env.ctx.secure) throw new OAuthError(400, "invalid_request", "https is required");
    await next();
  });
  const methodNotAllowed = (allow: string) => () => noStoreJson(405, { error: "invalid_request", error_description: "method not allowed" }, { allow });

  app.get(JWKS_PATH, () => jwks());
  app.all(JWKS_PATH, methodNotAllowed("GET, HEAD"));
  app.post(INTROSPECT_PATH, (c) => introspectEndpoint(c.env.ctx, introspectDeps));
  app.all(INTROSPECT_PATH, methodNotAllowed("POST"));
  app.post(TOKEN_PATH, (c) => tokenEndpoint(c.env.ctx, tokenDeps));
  app.all(TOKEN_PATH, methodNotAllowed("POST"));
  for (const path of metadataPaths(config.issuer)) {
    app.get(path, (c) => metadata(c.env.ctx));
    app.all(path, methodNotAllowed("GET, HEAD"));
  }
  app.notFound(() => noStoreJson(404, { error: "not_found", error_description: "resource not found" }));
  app.onError((err, c) => {
    if (err instanceof OAuthError) return renderOAuthError(err);
    // A bug, not a refusal: log the cause (never the request's secrets) and answer RFC-shaped.
    const ctx = c.env.ctx;
    log("error", "oauth.crashed", { requestId: ctx.requestId, host: ctx.host, path: ctx.path, cause: err instanceof Error ? err.message : String(err) });
    return noStoreJson(500, { error: "server_error", error_description: "internal error" });
  });

  return {
    matches(ctx) {
      const p = ctx.path;
      const onPath = p.startsWith(OAUTH_PREFIX) || p === METADATA_PATH || p.startsWith(`${METADATA_PATH}/`);
      return onPath && hostMatches(ctx.host);
    },
    async handle(ctx) {
      // Hono routes on req.url: give it the canonical path matches() saw, so every spelling of
      // an endpoint gets the same answer.
      return app.fetch(withCanonicalUrl(ctx), { ctx });
    },
    verifyToken: verifier.verifyToken,
  };
}
