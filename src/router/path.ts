// One spelling per path, so the path the router matches is byte for byte the path the backend
// receives. RFC 3986 §6.2.2 equivalences are applied (percent-encoded unreserved characters
// decoded, the hex of every other escape upper-cased, dot segments removed as in §5.2.4),
// repeated slashes merged as nginx `merge_slashes` and Envoy `merge_slashes` do, and every byte
// that RFC 3986 §3.3 does not allow in a path percent-encoded. Encoded reserved bytes (%2F, %3B…)
// stay encoded: they are data. Runs on every request: the common, already canonical path is
// recognised in one pass and returned as it is.

/** A path that cannot be made canonical safely; `problem` never quotes the path. */
export interface PathProblem {
  /** The answer's message. */
  readonly problem: string;
  /** The same, for a config path. */
  readonly reason: string;
}

const HEX = "0123456789ABCDEF";

// RFC 3986 §2.3 unreserved: ALPHA DIGIT - . _ ~
const UNRESERVED = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") UNRESERVED[c.charCodeAt(0)] = 1;

// RFC 3986 §3.3 pchar without pct-encoded (unreserved, sub-delims, ':' and '@'), plus '/'.
const PCHAR = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/") PCHAR[c.charCodeAt(0)] = 1;

const problem = (what: string, reason: string): PathProblem => ({ problem: `${what} request path: ${reason}`, reason });
const MALFORMED = problem("Invalid", "malformed percent-encoding");
const NUL = problem("Invalid", "NUL byte");
const RELATIVE = problem("Invalid", "it must start with '/'");
const HIDDEN_DOT = problem("Ambiguous", "an encoded '/' or '\\' or a ';' hides a dot segment");

export function isPathProblem(p: string | PathProblem): p is PathProblem {
  return typeof p !== "string";
}

/** True when `p` (starting with '/') is already canonical: only pchar and '/', no '//', no dot segment. */
function isCanonical(p: string): boolean {
  let prev = 47;
  for (let i = 1; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c >= 128 || PCHAR[c] === 0) return false; // '%', '\', and bytes to encode
    if (c === 47) {
      if (prev === 47) return false;
    } else if (c === 46 && prev === 47) {
      const n = i + 1 < p.length ? p.charCodeAt(i + 1) : 47;
      if (n === 47) return false;
      if (n === 46 && (i + 2 >= p.length || p.charCodeAt(i + 2) === 47)) return false;
    }
    prev = c;
  }
  return true;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 32;
  return l >= 97 && l <= 102 ? l - 87 : -1;
}

function pct(byte: number): string {
  return "%" + HEX[byte >> 4] + HEX[byte & 15];
}

/** UTF-8 bytes of one code point, percent-encoded (a lone surrogate becomes U+FFFD, as WHATWG URL does). */
function encodeCodePoint(cp: number): string {
  if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
  if (cp < 0x80) return pct(cp);
  if (cp < 0x800) return pct(0xc0 | (cp >> 6)) + pct(0x80 | (cp & 63));
  if (cp < 0x10000) return pct(0xe0 | (cp >> 12)) + pct(0x80 | ((cp >> 6) & 63)) + pct(0x80 | (cp & 63));
  return pct(0xf0 | (cp >> 18)) + pct(0x80 | ((cp >> 12) & 63)) + pct(0x80 | ((cp >> 6) & 63)) + pct(0x80 | (cp & 63));
}

// A segment with a malformed or NUL escape is kept as this marker and the problem reported only
// if the segment survives dot-segment removal: a listener that parses the target as a WHATWG URL
// drops `/a%zz/..` to `/` before the gateway sees it, and one that hands over the raw target
// must get the same answer.
const BAD_ESCAPE = "\u0000m";
const BAD_NUL = "\u0000n";

/**
 * RFC 3986 §5.2.4 over segments (an empty segment counts, as in the WHATWG URL parser some
 * listeners apply before the gateway sees a request, so raw and parsed targets agree on
 * `/a//../b` = `/a/b`),
 * then slashes merged. A `..` at the root stays at the root (§5.4.2: "/../g" → "/g").
 */
function join(segments: string[]): string | PathProblem {
  const out: string[] = [];
  const last = segments.length - 1;
  for (let k = 0; k <= last; k++) {
    const s = segments[k];
    if (s === "..") {
      out.pop();
      if (k === last) out.push("");
    } else if (s === ".") {
      if (k === last) out.push("");
    } else out.push(s);
  }
  let path = "";
  for (const s of out) {
    if (s === BAD_ESCAPE) return MALFORMED;
    if (s === BAD_NUL) return NUL;
    if (s !== "") path += "/" + s;
  }
  if (path === "") return "/";
  return out[out.length - 1] === "" ? path + "/" : path;
}

/**
 * The canonical form of an origin-form path (no query), or why it has none: a malformed or
 * NUL escape or a raw NUL in a segment that dot segments do not remove, or a path not starting
 * with '/' (the asterisk form "*" is returned as it is). A backslash is a '/', as WHATWG URL
 * parsing (which listeners and upstream clients apply) reads it; it is never sent on.
 */
export function canonicalPath(raw: string): string | PathProblem {
  if (raw.charCodeAt(0) !== 47) return raw === "*" ? raw : RELATIVE;
  if (isCanonical(raw)) return raw;
  const segments: string[] = [];
  let seg = "";
  let bad = "";
  const len = raw.length;
  for (let i = 1; i < len; i++) {
    const c = raw.charCodeAt(i);
    if (c === 47 || c === 92) {
      segments.push(bad || seg);
      seg = bad = "";
    } else if (c === 37) {
      const hi = i + 2 < len ? hexValue(raw.charCodeAt(i + 1)) : -1;
      const lo = hi < 0 ? -1 : hexValue(raw.charCodeAt(i + 2));
      if (lo < 0) {
        bad ||= BAD_ESCAPE;
        continue;
      }
      const byte = hi * 16 + lo;
      if (byte === 0) bad ||= BAD_NUL;
      seg += byte < 128 && UNRESERVED[byte] === 1 ? String.fromCharCode(byte) : pct(byte);
      i += 2;
    } else if (c < 128) {
      if (c === 0) bad ||= BAD_NUL;
      seg += PCHAR[c] === 1 ? raw[i] : pct(c);
    } else {
      const cp = raw.codePointAt(i)!;
      if (cp > 0xffff) i++;
      seg += encodeCodePoint(cp);
    }
  }
  segments.push(bad || seg);
  return join(segments);
}

/**
 * How a lenient backend may read a canonical path: `%2F` and `%5C` decoded to '/' (Go's
 * net/http, IIS), `;` path parameters dropped from every segment (Tomcat, Jetty, Spring:
 * `/admin;x/users` is `/admin/users`, `/..;/` is `/../`). null when the path has none of
 * them, the reading otherwise; a problem when that reading hides a dot segment, since no
 * route can vouch for where it lands on the backend.
 */
export function lenientReading(path: string): string | null | PathProblem {
  if (path.indexOf(";") < 0 && path.indexOf("%") < 0) return null;
  const decoded = path.replace(/%2F|%5C/g, "/");
  if (decoded === path && path.indexOf(";") < 0) return null;
  const segments = decoded.slice(1).split("/");
  for (let k = 0; k < segments.length; k++) {
    const semi = segments[k].indexOf(";");
    const s = semi < 0 ? segments[k] : segments[k].slice(0, semi);
    if (s === "." || s === "..") return HIDDEN_DOT;
    segments[k] = s;
  }
  return join(segments);
}
