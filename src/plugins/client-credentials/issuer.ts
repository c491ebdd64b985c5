// Which hosts the service answers on, and what it calls itself (the `iss` of its tokens and
// the `issuer` of its RFC 8414 metadata).
import type { RequestContext } from "../../request.ts";
import { OAuthError } from "./errors.ts";

export type HostMatcher = (host: string) => boolean;

/** `domain` is a regex on the host, anchored and case-insensitive (validated with the config). */
export function compileDomain(domain: string): HostMatcher {
  if (domain === "*") return () => true;
  const re = new RegExp(`^(?:${domain})$`, "i");
  return (host) => re.test(host);
}

// A Host header is reg-name or IP-literal with an optional port (RFC 9110 §7.2, RFC 3986 §3.2.2).
const AUTHORITY = /^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The configured issuer verbatim, else, as Otoroshi does, the scheme and the Host header as
 * received (`http://oauth.oto.tools:8080`). A Host that is not an authority would make an
 * issuer no verifier can parse, so it is refused.
 */
export function issuerFor(configured: string | undefined, ctx: RequestContext): string {
  if (configured !== undefined) return configured;
  const issuer = `${ctx.secure ? "https" : "http"}://${ctx.rawHost}`;
  // The pattern lets through what URL parsing refuses (port 99999, "[::::]"); such an issuer
  // would crash the metadata document and sign tokens nothing can verify.
  if (!AUTHORITY.test(ctx.rawHost) || !URL.canParse(issuer)) throw new OAuthError(400, "invalid_request", "invalid Host header");
  return issuer;
}

const noTrailingSlash = (s: string) => (s.endsWith("/") ? s.slice(0, -1) : s);

/**
 * The `iss` a token must carry. With an issuer configured: exactly that issuer, as every token
 * the gateway signs carries it (RFC 9068 §4: the issuer "MUST exactly match"; jose agrees).
 * Without: an http(s) origin whose host the `domain` setting matches, since such tokens were
 * issued by one of those hosts.
 */
export function issuerCheck(configured: string | undefined, hostMatches: HostMatcher): (iss: unknown) => boolean {
  if (configured !== undefined) return (iss) => iss === configured;
  return (iss) => {
    if (typeof iss !== "string" || !URL.canParse(iss)) return false;
    const url = new URL(iss);
    if (url.protocol !== "https:" && url.protocol !== "http:") return false;
    if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") return false;
    const host = url.hostname.endsWith(".") ? url.hostname.slice(0, -1) : url.hostname;
    return hostMatches(host);
  };
}

/** RFC 8414 §3: for an issuer with a path, the metadata lives at the well-known URI + that path. */
export function metadataPaths(configured: string | undefined): string[] {
  const base = "/.well-known/oauth-authorization-server";
  if (configured === undefined) return [base];
  const path = noTrailingSlash(new URL(configured).pathname);
  return path === "" ? [base] : [base, base + path];
}
