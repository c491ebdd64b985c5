// Backend URL pieces. Otoroshi concatenates `root` and the path without a separator, strips
// prefixes with a regex and elides ports 80/443 whatever the scheme (W29, W31); these helpers
// join with exactly one '/', strip literally on segment boundaries and elide only the scheme's
// default port. Paths stay as the client sent them otherwise (no '//' collapsing, no decoding).

export interface TargetAddress {
  hostname: string;
  port: number;
  tls: boolean;
}

/** Appends `rest` to `root` with exactly one '/' between them. */
export function joinPath(root: string, rest: string): string {
  if (root === "" || root === "/") {
    if (rest === "") return "/";
    return rest.charCodeAt(0) === 47 ? rest : "/" + rest;
  }
  if (rest === "") return root;
  const rootSlash = root.charCodeAt(root.length - 1) === 47;
  const restSlash = rest.charCodeAt(0) === 47;
  if (rootSlash && restSlash) return root + rest.slice(1);
  if (!rootSlash && !restSlash) return root + "/" + rest;
  return root + rest;
}

/**
 * Removes `prefix` from the start of `path` when it ends on a segment boundary:
 * ("/api/users", "/api") → "/users", ("/api", "/api") → "/", ("/apix", "/api") → "/apix".
 */
export function stripPrefix(path: string, prefix: string): string {
  let p = prefix;
  if (p.length > 1 && p.charCodeAt(p.length - 1) === 47) p = p.slice(0, -1);
  if (p === "" || p === "/") return path;
  if (!path.startsWith(p)) return path;
  if (path.length === p.length) return "/";
  return path.charCodeAt(p.length) === 47 ? path.slice(p.length) : path;
}

/** IPv6 literals need brackets in URLs and Host (RFC 3986 §3.2.2). */
function hostLiteral(hostname: string): string {
  return hostname.includes(":") && hostname.charCodeAt(0) !== 91 ? `[${hostname}]` : hostname;
}

function isDefaultPort(t: TargetAddress): boolean {
  return t.tls ? t.port === 443 : t.port === 80;
}

/** "scheme://host[:port]"; the port is elided only when it is the scheme's default (W31). */
export function targetOrigin(t: TargetAddress): string {
  const host = hostLiteral(t.hostname);
  const scheme = t.tls ? "https://" : "http://";
  return isDefaultPort(t) ? scheme + host : `${scheme}${host}:${t.port}`;
}

/** RFC 9110 §7.2: Host carries the port unless it is the default for the scheme (W30). */
export function hostHeader(t: TargetAddress): string {
  const host = hostLiteral(t.hostname);
  return isDefaultPort(t) ? host : `${host}:${t.port}`;
}
