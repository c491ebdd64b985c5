// Field types shared by the schema (schema.ts): quantities that say their unit, stored secrets,
// host names, domains, CIDRs, the Redis URL. Their messages never quote the value they check
// (it may be a secret); the position and the path say which value it is.
import { isIP } from "node:net";
import { z } from "zod";
import { redisUrlProblem } from "../limits/redis.ts";
import { parseCidr } from "../net/cidr.ts";
import { parseDomain } from "../router/domain.ts";
import { canonicalPath, isPathProblem } from "../router/path.ts";

export interface Unit {
  /** Plural, as in "a number of milliseconds". */
  name: string;
  /** A value with what it means, e.g. "30000 for 30 s". */
  example: string;
}

export const MILLISECONDS: Unit = { name: "milliseconds", example: "30000 for 30 s" };
export const SECONDS: Unit = { name: "seconds", example: "60 for one minute" };
export const BYTES: Unit = { name: "bytes", example: "1048576 for 1 MiB" };
export const CALLS: Unit = { name: "calls", example: "1000" };

/**
 * A whole number of `unit`. A string such as "5s" or "1MB" gets a message naming the unit the
 * field is counted in, instead of "expected number, received string".
 */
export function quantity(unit: Unit, min: number, max?: number) {
  const s = z
    .number({ error: (iss) => (iss.input === undefined ? undefined : `expected a whole number of ${unit.name}, without a unit (e.g. ${unit.example})`) })
    .int(`must be a whole number of ${unit.name}`)
    .min(min, `must be at least ${min} ${unit.name}`);
  return max === undefined ? s : s.max(max, `must be at most ${max} ${unit.name}`);
}

export const HASHED_SECRET_MESSAGE = 'a hashed secret is "sha256:" followed by exactly 64 hex digits (as `otoroshi-lite hash-secret` prints it)';

/**
 * A client secret as stored: plain text, or "sha256:" and the 64 hex digits of a SHA-256. A
 * value with the prefix and anything else would never match any presented secret.
 */
export const storedSecret = z
  .string()
  .min(1)
  .regex(/^(?!sha256:)[\s\S]*$|^sha256:[0-9a-fA-F]{64}$/, HASHED_SECRET_MESSAGE);

const LABEL = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;

/** Why `h` cannot be a host to connect to or listen on, or null. */
export function hostProblem(h: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(h) || /[/?#@\s]/.test(h)) return "a hostname or IP address, without scheme, path or spaces";
  const bracketed = /^\[(.*)\](?::(\d*))?$/.exec(h);
  if (bracketed) {
    if (bracketed[2] !== undefined) return PORT_MESSAGE;
    return isIP(bracketed[1] ?? "") === 6 ? null : "not a valid IPv6 address";
  }
  if (isIP(h)) return null;
  if (/^[^:]*:\d*$/.test(h)) return PORT_MESSAGE;
  if (h.includes(":")) return "not a valid IPv6 address";
  const name = h.endsWith(".") ? h.slice(0, -1) : h;
  if (name.length > 253 || !name.split(".").every((l) => LABEL.test(l))) return "not a valid host name (letters, digits, '-' and '_' in dot-separated labels; international names in their xn-- form)";
  return null;
}

const NO_SCHEME_PATH = /^[^\s/?#@]+$/;
const NO_PORT = /^(?!\[[^\]]*\]:\d*$)(?![^:]*:\d*$)/;
const PORT_MESSAGE = "must not contain a port: write the port in `port` (e.g. hostname: 127.0.0.1 and port: 8080)";

/** The patterns are in the JSON Schema too (editors flag these); the rest is checked here. */
export const hostname = z
  .string()
  .min(1)
  .regex(NO_SCHEME_PATH, "a hostname or IP address, without scheme, path or spaces")
  .regex(NO_PORT, PORT_MESSAGE)
  .superRefine((h, ctx) => {
    // A problem a pattern above reported is not reported twice.
    if (!NO_SCHEME_PATH.test(h) || !NO_PORT.test(h)) return;
    const p = hostProblem(h);
    if (p) ctx.addIssue({ code: "custom", message: p });
  });

/** `message` with `"value"` (as a validator elsewhere quotes it) replaced by `subject`. */
function unquote(message: string, value: string, subject: string): string {
  let m = message;
  for (const v of new Set([value, value.trim()])) m = m.split(`"${v}": `).join("").split(`"${v}"`).join(subject);
  return m;
}

export const domain = z
  .string()
  .min(1)
  .superRefine((d, ctx) => {
    const r = parseDomain(d);
    if (!r.ok) ctx.addIssue({ code: "custom", message: r.message.split(`domain "${d}": `).join("").split(`domain "${d}" `).join("this domain ") });
  });

export const cidr = z
  .string()
  .min(1)
  .superRefine((t, ctx) => {
    const r = parseCidr(t);
    if (!r.ok) ctx.addIssue({ code: "custom", message: unquote(r.message, t, "this entry") });
  });

export const redisUrl = z
  .string()
  .regex(/^rediss?:\/\/.+/, 'expected "redis://host:port[/db]" (or "rediss://")')
  .superRefine((u, ctx) => {
    if (!/^rediss?:\/\/.+/.test(u)) return;
    const p = redisUrlProblem(u);
    if (p) ctx.addIssue({ code: "custom", message: p === "not a valid Redis URL" ? `${p} (expected "redis://[user:password@]host[:port][/db]", a port from 1 to 65535)` : p });
  });

export const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "not a valid HTTP header name");

// Fields with a meaning of their own to HTTP, the proxy or the gateway. A header the gateway
// asserts is removed from every incoming request on every route, so naming one of these would
// break framing, routing or authentication for every call (RFC 9110 §7.6.1, RFC 9112 §6).
const RESERVED_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "content-type",
  "content-encoding",
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade",
  "expect",
  "authorization",
  "proxy-authorization",
  "cookie",
  "forwarded",
  "x-real-ip",
  "accept-encoding",
  "user-agent",
  "traceparent",
  "tracestate",
  "x-request-id",
]);

/** A header name the gateway sets for the backend (and so removes from every client request). */
export const assertedHeaderName = headerName.superRefine((n, ctx) => {
  const lower = n.toLowerCase().replaceAll("_", "-");
  if (RESERVED_HEADERS.has(lower) || lower.startsWith("x-forwarded-")) {
    ctx.addIssue({ code: "custom", message: "this header has a meaning of its own: the gateway removes the header it sets from every request, so choose a name of yours (e.g. X-Client-Id)" });
  }
});

/** backend.root: a path prefix with a canonical form (routing and forwarding use that form). */
export const backendRoot = z
  .string()
  .startsWith("/", "root must start with /")
  .superRefine((r, ctx) => {
    if (!r.startsWith("/")) return; // said above
    const c = canonicalPath(r);
    if (isPathProblem(c)) ctx.addIssue({ code: "custom", message: c.reason });
  })
  .transform((r) => canonicalPath(r) as string);
