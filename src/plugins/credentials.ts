// Credential parsing shared by the Apikeys plugin and the OAuth endpoints.

/** RFC 9110 §11.1: auth schemes are case-insensitive. Returns the credentials after the scheme. */
export function authParam(value: string | null, scheme: "basic" | "bearer"): string | null {
  if (!value) return null;
  const v = value.trim();
  const n = scheme.length;
  if (v.length <= n || v[n] !== " " || v.slice(0, n).toLowerCase() !== scheme) return null;
  const rest = v.slice(n + 1).trim();
  return rest || null;
}

const B64 = /^[A-Za-z0-9+/_-]+={0,2}$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes standard and URL-safe base64 (RFC 7617 §2 uses the standard alphabet; Otoroshi used URL-safe). */
export function decodeBase64Text(b64: string): string | null {
  if (!B64.test(b64) || b64.length > 8192) return null;
  const std = b64.replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Buffer.from(std, "base64");
  try {
    return UTF8.decode(bytes);
  } catch {
    return null;
  }
}

/** user:pass from a Basic credential (the part after "Basic "); the password may contain ':'. */
export function parseBasic(b64: string): { id: string; secret: string } | null {
  const decoded = decodeBase64Text(b64);
  if (decoded === null) return null;
  const i = decoded.indexOf(":");
  if (i <= 0) return null;
  return { id: decoded.slice(0, i), secret: decoded.slice(i + 1) };
}

/** RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding. Returns null on bad escapes. */
export function formDecode(s: string): string | null {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return null;
  }
}

export function parseCookies(header: string | null): Map<string, string> {
  const out = new Map<string, string>();
  if (!header) return out;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i <= 0) continue;
    const k = part.slice(0, i).trim();
    if (!out.has(k)) out.set(k, part.slice(i + 1).trim());
  }
  return out;
}

/** Removes the named cookies from a Cookie header; null when nothing is left. */
export function withoutCookies(header: string, names: ReadonlySet<string>): string | null {
  const kept = header
    .split(";")
    .map((p) => p.trim())
    .filter((p) => {
      const i = p.indexOf("=");
      return p && !names.has(i < 0 ? p : p.slice(0, i).trim());
    });
  return kept.length ? kept.join("; ") : null;
}

/** Parses "otoapk_<clientId>_<hex>" — split at the LAST '_' so client ids may contain '_' (Otoroshi W25). */
export function parseOtoBearer(value: string): { clientId: string; mac: string } | null {
  if (!value.startsWith("otoapk_")) return null;
  const rest = value.slice(7);
  const i = rest.lastIndexOf("_");
  if (i <= 0 || i === rest.length - 1) return null;
  return { clientId: rest.slice(0, i), mac: rest.slice(i + 1) };
}

/** A compact JWS looks like three dot-separated parts; an empty signature (alg "none") still
 * counts, so such a token is refused as a bad credential rather than ignored. */
export function looksLikeJwt(v: string): boolean {
  const a = v.indexOf(".");
  if (a <= 0) return false;
  const b = v.indexOf(".", a + 1);
  return b > a + 1 && v.indexOf(".", b + 1) < 0;
}
