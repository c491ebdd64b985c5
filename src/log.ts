// Structured JSON-lines logger. One object per line on stderr (stdout stays free for CLI
// output). Fields whose name looks like a secret are redacted, wherever they are nested.

export type Level = "debug" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

const SECRET_FIELD = /secret|password|token|authorization|private|credential|cookie|^key$/i;

export type Sink = (line: string) => void;

let sink: Sink = (line) => {
  process.stderr.write(line + "\n");
};
let minLevel: Level = (process.env.OTOROSHI_LOG_LEVEL as Level) in order ? (process.env.OTOROSHI_LOG_LEVEL as Level) : "info";

export function setLogSink(s: Sink): void {
  sink = s;
}
export function setLogLevel(l: Level): void {
  minLevel = l;
}
export function getLogLevel(): Level {
  return minLevel;
}

function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value instanceof Error) return { name: value.name, message: value.message };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_FIELD.test(k) && v !== null && typeof v !== "object" && typeof v !== "boolean" ? "[redacted]" : redact(v, depth + 1);
  }
  return out;
}

export function log(level: Level, event: string, fields: Record<string, unknown> = {}): void {
  if (order[level] < order[minLevel]) return;
  const record = { time: new Date().toISOString(), level, event, ...(redact(fields) as object) };
  sink(JSON.stringify(record));
}
