// A frontend domain is "host" or "host/path" as in Otoroshi ("api.example.com/v1",
// "*.example.com"). Hosts compare case-insensitively (RFC 9110 §4.2.3) and without the port.

export interface DomainSpec {
  /** Lower-cased host without the wildcard label, e.g. "example.com" for "*.example.com". */
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
  let path = slash < 0 ? "/" : raw.slice(slash);
  if (/^[a-z]+:\/\//i.test(raw)) return { ok: false, message: `domain "${text}" must not contain a scheme; write "host" or "host/path"` };
  if (host.includes(":")) return { ok: false, message: `domain "${text}" must not contain a port; hosts match whatever the port` };
  if (path.includes("?") || path.includes("#")) return { ok: false, message: `domain "${text}": the path may not contain '?' or '#'` };
  let wildcard = false;
  if (host.startsWith("*.")) {
    wildcard = true;
    host = host.slice(2);
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  const labels = host.split(".");
  if (!host || !labels.every((l) => LABEL.test(l))) return { ok: false, message: `domain "${text}" is not a valid host name (use "*.example.com" for a wildcard)` };
  path = normalisePrefix(path);
  return { ok: true, spec: { host, wildcard, path } };
}

export function normalisePrefix(path: string): string {
  let p = path.replace(/\/{2,}/g, "/");
  if (!p.startsWith("/")) p = "/" + p;
  if (p.length > 1 && p.endsWith("/")) p = p.slice(0, -1);
  return p;
}

export function domainKey(spec: DomainSpec): string {
  return `${spec.wildcard ? "*." : ""}${spec.host}${spec.path === "/" ? "" : spec.path}`;
}
