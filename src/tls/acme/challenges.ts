// HTTP-01 (RFC 8555 §8.3): while an order is pending, the CA fetches
// http://<name>/.well-known/acme-challenge/<token> and expects the key authorization as the body.
// The gateway answers it itself, before routing and on every host, so no route, redirect or
// credential check stands in the way.
import { errorResponse, GatewayError } from "../../errors.ts";

export const CHALLENGE_PREFIX = "/.well-known/acme-challenge/";
// RFC 8555 §8.3: the token is base64url; the key authorization is token "." thumbprint.
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

export class ChallengeStore {
  private readonly tokens = new Map<string, string>();

  set(token: string, keyAuthorization: string): void {
    this.tokens.set(token, keyAuthorization);
  }

  delete(token: string): void {
    this.tokens.delete(token);
  }

  get size(): number {
    return this.tokens.size;
  }

  /** The answer for a challenge URL path; call only for paths under CHALLENGE_PREFIX. */
  answer(method: string, path: string): Response {
    if (method !== "GET" && method !== "HEAD") {
      return errorResponse(new GatewayError(405, "ERR_METHOD_NOT_ALLOWED", "Method not allowed"), method);
    }
    const token = path.slice(CHALLENGE_PREFIX.length);
    const value = TOKEN.test(token) ? this.tokens.get(token) : undefined;
    if (value === undefined) return errorResponse(new GatewayError(404, "ERR_ROUTE_NOT_FOUND", "no pending ACME challenge with this token"), method);
    return new Response(method === "HEAD" ? null : value, {
      status: 200,
      headers: { "content-type": "text/plain", "content-length": String(Buffer.byteLength(value)), "cache-control": "no-store" },
    });
  }
}
