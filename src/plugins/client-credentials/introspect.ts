// POST /.well-known/otoroshi/oauth/token/introspect (RFC 7662). Unlike Otoroshi (W1, W2) the
// caller must authenticate, every answer is 200, and a token is active only if the gateway
// itself would accept it right now.
import type { RequestContext } from "../../request.ts";
import { readParams } from "./body.ts";
import type { ClientAuthDeps } from "./client-auth.ts";
import { authenticateClient } from "./client-auth.ts";
import { badRequest, noStoreJson } from "./errors.ts";
import type { Verifier } from "./verify.ts";
import { clientIdOf } from "./verify.ts";

export interface IntrospectDeps extends ClientAuthDeps {
  maxBodySize: number;
  verifier: Verifier;
}

// RFC 7662 §2.2: "active": false says nothing more about why, so no token can be probed.
const INACTIVE = { active: false };

export async function introspectEndpoint(ctx: RequestContext, deps: IntrospectDeps): Promise<Response> {
  const params = await readParams(ctx.req, deps.maxBodySize);
  // RFC 7662 §2.1: the endpoint MUST require authorization; any client may introspect, as
  // resource servers do. token_type_hint is optional and ignored: we issue one token type.
  await authenticateClient(ctx, params, deps);
  const token = params.get("token");
  if (token === undefined) throw badRequest("missing token");

  const r = deps.verifier.verify(token, ctx.now);
  if (!r.ok) return noStoreJson(200, INACTIVE);
  const clientId = clientIdOf(r.payload);
  const key = clientId === undefined ? undefined : deps.registry.get(clientId);
  // The same rules as the Apikeys plugin: the key must still exist and be active, and a key
  // bound to its own key pair only owns tokens signed with it.
  if (clientId === undefined || key === undefined || !deps.registry.isActive(key, ctx.now)) return noStoreJson(200, INACTIVE);
  if (key.signKeyPair !== undefined && key.signKeyPair !== r.header.kid) return noStoreJson(200, INACTIVE);

  const p = r.payload;
  const answer: Record<string, unknown> = { active: true, client_id: clientId };
  if (typeof p.scope === "string") answer.scope = p.scope;
  for (const claim of ["sub", "aud", "iss", "exp", "iat", "nbf", "jti"]) if (p[claim] !== undefined) answer[claim] = p[claim];
  answer.token_type = "Bearer";
  return noStoreJson(200, answer);
}
