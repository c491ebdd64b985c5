// A frontend domain is "host" or "host/path" as in Otoroshi ("api.example.com/v1",
// "*.example.com"). Hosts compare case-insensitively (RFC 9110 §4.2.3) and without the port;
// paths are canonicalised at compile time with the function requests go through, so
// "api.test/%61dmin" protects exactly what "api.test/admin" does.
import { canonicalPath, isPathProblem } from "./path.ts";

export interface DomainSpec {
  /** Lower-cased host without the wildcard label, e.g. "example.com" for "*.example.com";
   * "" for the catch-all "*" (any host, tried after every other domain). */
  host: string;
  wildcard: boolean;
  /** Normalised path prefix: "/" or "/a/b" (no trailing slash). */
  path: string;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

export function parseDomain(text: string): { ok: true; spec: DomainSpec } | { ok: false; message: string } {
  const raw = text.trim();
  const slash = raw.indexOf("/");
  let host = (slash < 0 ? raw : raw.slice(0, slash)).toLowerCase();
  const path = slash < 0 ? "/" : raw.slice(slash);
  if (/^[a-z]+:\/\//i.test(raw)) return { ok: false, message: 'a domain must not contain a scheme; write "host" or "host/path"' };
  if (host.includes(":")) return { ok: false, message: "a domain must not contain a port; hosts match whatever the port" };
  if (path.includes("?") || path.includes("#")) return { ok: false, message: "the path of a domain may not contain '?' or '#'" };
  let wildcard = false;
  if (host === "*") {
    const prefix = normalisePrefix(path);
    if (typeof prefix !== "string") return { ok: false, message: prefix.message };
    return { ok: true, spec: { host: "", wildcard: true, path: prefix } };
  }
  if (host.startsWith("*.")) {
    wildcard = true;
    host = host.slice(2);
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  const labels = host.split(".");
  if (!host || !labels.every((l) => LABEL.test(l))) return { ok: false, message: 'a domain must be a valid host name (use "*.example.com" for a wildcard, "*" for any host)' };
  const prefix = normalisePrefix(path);
  if (typeof prefix !== "string") return { ok: false, message: prefix.message };
  return { ok: true, spec: { host, wildcard, path: prefix } };
}

/**
 * A domain's path as a route prefix: canonical (see path.ts), without a trailing '/'. An
 * encoded '/' or '\\' or a ';' is refused: lenient backends read them as separators, so
 * requests under such a prefix would be refused as ambiguous (handler.ts).
 */
export function normalisePrefix(path: string): string | { message: string } {
  const c = canonicalPath(path);
  if (isPathProblem(c)) return { message: `the path of a domain is invalid: ${c.reason}` };
  if (/%2F|%5C|;/.test(c)) return { message: "the path of a domain may not contain ';' or an encoded '/' or '\\' (backends read them as separators)" };
  return c.length > 1 && c.endsWith("/") ? c.slice(0, -1) : c;
}

export function domainKey(spec: DomainSpec): string {
  const host = spec.host === "" ? "*" : `${spec.wildcard ? "*." : ""}${spec.host}`;
  return `${host}${spec.path === "/" ? "" : spec.path}`;
}
