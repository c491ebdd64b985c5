// The public documents: the JWK Set (RFC 7517 §5) and the authorization server metadata
// (RFC 8414 §2).
import type { Keyring } from "../../keys/keyring.ts";
import { jwks } from "../../keys/keyring.ts";
import type { RequestContext } from "../../request.ts";
import { publicJson } from "./errors.ts";
import { issuerFor } from "./issuer.ts";

export const OAUTH_PREFIX = "/.well-known/otoroshi/oauth/";
export const JWKS_PATH = `${OAUTH_PREFIX}jwks.json`;
export const TOKEN_PATH = `${OAUTH_PREFIX}token`;
export const INTROSPECT_PATH = `${OAUTH_PREFIX}token/introspect`;

// Long enough to spare the gateway, short enough for a key added at reload to be picked up soon.
const MAX_AGE = 300;

/** Only the signing key pairs (W17), computed once per snapshot. */
export function jwksResponder(signingKeys: Keyring): () => Response {
  const json = JSON.stringify(jwks(signingKeys.all));
  return () => publicJson(json, MAX_AGE);
}

const AUTH_METHODS = ["client_secret_basic", "client_secret_post"];

export function metadataResponder(configured: string | undefined, scopes: readonly string[]): (ctx: RequestContext) => Response {
  const document = (issuer: string): string => {
    // The endpoints are served at the root of the issuer's origin, whatever its path.
    const origin = new URL(issuer).origin;
    const doc: Record<string, unknown> = {
      issuer,
      token_endpoint: origin + TOKEN_PATH,
      jwks_uri: origin + JWKS_PATH,
      introspection_endpoint: origin + INTROSPECT_PATH,
      grant_types_supported: ["client_credentials"],
      // RFC 8414 §2 marks this REQUIRED, but it lists authorization-endpoint response types and
      // this server has no authorization endpoint: the honest value is the empty list.
      response_types_supported: [],
      token_endpoint_auth_methods_supported: AUTH_METHODS,
      introspection_endpoint_auth_methods_supported: AUTH_METHODS,
    };
    if (scopes.length > 0) doc.scopes_supported = scopes;
    return JSON.stringify(doc);
  };
  if (configured !== undefined) {
    const json = document(configured);
    return () => publicJson(json, MAX_AGE);
  }
  // Derived from the request (scheme and Host), as the token's iss is; caches key on both.
  return (ctx) => publicJson(document(issuerFor(undefined, ctx)), MAX_AGE);
}
