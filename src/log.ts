// Structured JSON-lines logger. One object per line on stderr (stdout stays free for CLI
// output). Fields whose name looks like a secret are redacted, wherever they are nested; string
// values are scrubbed of credentials that slipped into free text (an error message quoting a
// URL with its query string, an Authorization value, a JWT, an otoapk_ bearer).

export type Level = "debug" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const SECRET_FIELD = /secret|password|token|authorization|private|credential|cookie|^key$/i;

// Credentials as they appear inside free text. Each pattern keeps what identifies the thing
// (the scheme, the client id, the URL's path) and drops what would let someone replay it.
const TEXT_SECRETS: [RegExp, string][] = [
  // A URL's query string may carry bearer_auth / basic_auth / apikey parameters.
  [/(\b[a-z][a-z0-9+.-]*:\/\/[^\s?#"'<>]*)\?[^\s#"'<>)]*/gi, "$1?[redacted]"],
  // RFC 9110 §11.4 credentials: "Basic <token68>", "Bearer <token68>" (the usual spelling of
  // the scheme, and 8 characters at least, so that prose such as "Bearer token" survives).
  [/\b(Basic|Bearer) +[A-Za-z0-9._~+/-]{8,}=*/g, "$1 [redacted]"],
  // A compact JWS (header.payload.signature); the header of every JWT starts with `{"` = eyJ.
  [/\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g, "[redacted jwt]"],
  // otoapk_<clientId>_<hex HMAC>
  [/\b(otoapk_\S*_)[0-9a-f]{64}\b/gi, "$1[redacted]"],
];
const TEXT_HINT = /:\/\/|Basic |Bearer |eyJ|otoapk_/;

export type Sink = (line: string) => void;

let sink: Sink = (line) => {
  process.stderr.write(line + "\n");
};
let minLevel: Level = (process.env.OTOROSHI_LOG_LEVEL as Level) in order ? (process.env.OTOROSHI_LOG_LEVEL as Level) : "info";

interface Tap {
  fn: Sink;
  /** null: follows the sink's level. */
  level: number | null;
}
let taps: readonly Tap[] = [];

export function setLogSink(s: Sink): void {
  sink = s;
}
export function setLogLevel(l: Level): void {
  minLevel = l;
}
export function getLogLevel(): Level {
  return minLevel;
}

/**
 * Every emitted line also goes to fn, whatever sink is set (tests swap the sink; a tap sees the
 * lines anyway). `level` gives the tap its own threshold (default: the sink's). Returns the
 * function that removes the tap.
 */
export function addLogTap(fn: Sink, opts: { level?: Level } = {}): () => void {
  const tap: Tap = { fn, level: opts.level ? order[opts.level] : null };
  taps = [...taps, tap];
  return () => {
    taps = taps.filter((t) => t !== tap);
  };
}

/** Credentials in free text replaced (the access log passes its path and host through this too). */
export function scrub(text: string): string {
  if (!TEXT_HINT.test(text)) return text;
  let out = text;
  for (const [re, by] of TEXT_SECRETS) out = out.replace(re, by);
  return out;
}

function redact(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return scrub(value);
  if (depth > 6 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: scrub(value.message) };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_FIELD.test(k) && v !== null && typeof v !== "object" && typeof v !== "boolean" ? "[redacted]" : redact(v, depth + 1);
  }
  return out;
}

export function log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
  const n = order[level];
  const toSink = n >= order[minLevel];
  if (!toSink && (taps.length === 0 || !taps.some((t) => n >= (t.level ?? order[minLevel])))) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, event, ...(redact(fields) as object) });
  if (toSink) sink(line);
  for (const t of taps) if (n >= (t.level ?? order[minLevel])) t.fn(line);
}
