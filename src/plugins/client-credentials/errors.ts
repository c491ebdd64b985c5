// OAuth endpoint answers. Errors use the RFC 6749 §5.2 body {"error","error_description"},
// never the gateway's Otoroshi-Error shape, because OAuth client libraries parse this one.

/** RFC 6749 §5.2 error codes (plus server_error and temporarily_unavailable from §4.1.2.1, used
 * for our own faults and for a shared limiter that cannot answer). */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "not_found"
  | "server_error"
  | "temporarily_unavailable";

/** A refusal the endpoint renders as is; anything else thrown is a bug (500, logged). */
export class OAuthError extends Error {
  readonly status: number;
  readonly error: OAuthErrorCode;
  readonly headers: Record<string, string>;
  constructor(status: number, error: OAuthErrorCode, description: string, headers: Record<string, string> = {}) {
    super(description);
    this.name = "OAuthError";
    this.status = status;
    this.error = error;
    this.headers = headers;
  }
}

// RFC 6749 §5.1: responses carrying tokens or credentials MUST NOT be cached; the same goes
// for errors and introspection answers (RFC 7662 §2.2 returns token metadata).
const NO_STORE: Record<string, string> = {
  "content-type": "application/json",
  "cache-control": "no-store",
  pragma: "no-cache",
};

export function noStoreJson(status: number, body: unknown, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...NO_STORE, ...extra } });
}

export function renderOAuthError(e: OAuthError): Response {
  return noStoreJson(e.status, { error: e.error, error_description: e.message }, e.headers);
}

export const badRequest = (description: string) => new OAuthError(400, "invalid_request", description);

/** Public, cacheable JSON (JWKS, metadata); Content-Length is set so HEAD reports it too. */
export function publicJson(json: string, maxAge: number): Response {
  return new Response(json, {
    status: 200,
    headers: {
      "content-type": "application/json",
      "cache-control": `public, max-age=${maxAge}`,
      "content-length": String(new TextEncoder().encode(json).byteLength),
    },
  });
}
