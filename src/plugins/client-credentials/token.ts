// POST /.well-known/otoroshi/oauth/token: the client credentials grant (RFC 6749 §4.4) issuing
// RFC 9068 JWT access tokens.
import { metrics } from "../../monitoring/metrics.ts";
import { randomUUID } from "node:crypto";
import type { ClientCredentialServiceConfig } from "../../config/schema.ts";
import { signJwt } from "../../keys/jwt.ts";
import type { Keyring } from "../../keys/keyring.ts";
import { log } from "../../log.ts";
import type { RequestContext } from "../../request.ts";
import type { ApiKeyRecord } from "../apikeys/registry.ts";
import { readParams } from "./body.ts";
import type { ClientAuthDeps } from "./client-auth.ts";
import { authenticateClient } from "./client-auth.ts";
import { badRequest, noStoreJson, OAuthError } from "./errors.ts";
import { issuerFor } from "./issuer.ts";

export interface TokenDeps extends ClientAuthDeps {
  config: ClientCredentialServiceConfig;
  signingKeys: Keyring;
}

// RFC 6749 Appendix A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

export async function tokenEndpoint(ctx: RequestContext, deps: TokenDeps): Promise<Response> {
  const { config } = deps;
  const params = await readParams(ctx.req, config.maxBodySize);
  const grantType = params.get("grant_type");
  if (grantType === undefined) throw badRequest("missing grant_type");
  const key = await authenticateClient(ctx, params, deps);
  // RFC 6749 §5.2: the grant type is checked for an authenticated client.
  if (grantType !== "client_credentials") {
    throw new OAuthError(400, "unsupported_grant_type", "only the client_credentials grant type is supported");
  }
  const scope = grantedScope(params.get("scope"), key);

  const kid = key.signKeyPair ?? config.defaultKeyPair;
  const pair = deps.signingKeys.get(kid);
  if (pair === undefined) {
    // Config validation makes this unreachable; should it happen, fail closed instead of
    // falling back to an HMAC with the client secret as Otoroshi does (W12).
    log("error", "oauth.signing_key_missing", { requestId: ctx.requestId, keyPair: kid, clientId: key.clientId });
    throw new OAuthError(500, "server_error", "the signing key pair is not available");
  }

  const iat = Math.floor(ctx.now / 1000);
  const lifetime = Math.floor(config.expiration / 1000);
  // RFC 9068 §2.2: iss, exp, aud, sub, client_id, iat, jti; cid keeps Otoroshi's extractor working.
  const claims: Record<string, unknown> = {
    iss: issuerFor(config.issuer, ctx),
    sub: key.clientId,
    aud: config.audience,
    client_id: key.clientId,
    cid: key.clientId,
  };
  // RFC 9068 §2.2.3: the granted scope goes in the token so resource servers can enforce it.
  if (scope !== undefined) claims.scope = scope;
  Object.assign(claims, { jti: randomUUID(), iat, nbf: iat, exp: iat + lifetime });

  // signJwt puts alg (from the key), typ "at+jwt" (RFC 9068 §2.1) and kid in the header.
  const accessToken = signJwt(pair, claims);
  metrics.tokenIssued(pair.alg);
  const body: Record<string, unknown> = { access_token: accessToken, token_type: "Bearer", expires_in: lifetime };
  if (scope !== undefined) body.scope = scope;
  return noStoreJson(200, body);
}

/**
 * RFC 6749 §3.3: scope is a space-delimited set. Every requested scope must be among the key's
 * (metadata `scope`); without a request the key's full scope is granted. Unlike Otoroshi (W5),
 * runs of spaces and duplicates are fine and an empty scope counts as absent.
 */
function grantedScope(requested: string | undefined, key: ApiKeyRecord): string | undefined {
  const wanted = requested === undefined ? [] : [...new Set(requested.split(" ").filter((s) => s !== ""))];
  if (wanted.length === 0) return key.scopes && key.scopes.length > 0 ? key.scopes.join(" ") : undefined;
  if (key.scopes === null) throw new OAuthError(400, "invalid_scope", "this client has no scopes");
  for (const s of wanted) {
    if (!SCOPE_TOKEN.test(s) || !key.scopes.includes(s)) {
      throw new OAuthError(400, "invalid_scope", "requested scope is not allowed for this client");
    }
  }
  return wanted.join(" ");
}
