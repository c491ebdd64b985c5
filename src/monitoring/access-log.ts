// The access log's writer: one JSON line per request, on stdout (the other logs are on stderr,
// so the two streams can be shipped apart) or appended to server.accessLog.file, which SIGUSR1
// reopens (logrotate renames the file, then signals; new lines go to a new file). Lines are
// gathered and written every FLUSH_MS (or at 64 KiB): one write for many requests, not one each.
import { accessSync, closeSync, constants, existsSync, openSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";

type Target = { kind: "stdout" } | { kind: "file"; path: string; fd: number } | { kind: "sink"; fn: (line: string) => void };

let target: Target | null = null;
let buffered = "";
let scheduled = false;
/** A batch never grows past this before it is written. */
const MAX_BATCH = 64 * 1024;
/** How long a line may wait for the write that carries it (a clean stop writes what waits). */
const FLUSH_MS = 25;

/** True when access lines are written (serve turns it on from server.accessLog). */
export function accessLogOn(): boolean {
  return target !== null;
}

function open(path: string): number {
  // 0o640: request lines name clients; the group (a log shipper) may read, others may not.
  return openSync(path, "a", 0o640);
}

/** Why `check` says the start could not open this file for appending (an errno code), or null. */
export function unwritableAccessLog(path: string): string | null {
  try {
    if (existsSync(path)) {
      if (statSync(path).isDirectory()) return "EISDIR";
      accessSync(path, constants.W_OK);
    } else {
      if (!statSync(dirname(path)).isDirectory()) return "ENOTDIR";
      accessSync(dirname(path), constants.W_OK | constants.X_OK);
    }
    return null;
  } catch (e) {
    return (e as { code?: string }).code ?? "error";
  }
}

/** From server.accessLog. Throws (an errno message) when the file cannot be opened. */
export function configureAccessLog(cfg: { enabled: boolean; file?: string }): void {
  flushAccessLog();
  // Opened before the old one is closed: a file that cannot be opened leaves things as they were.
  const next: Target | null = !cfg.enabled ? null : cfg.file ? { kind: "file", path: cfg.file, fd: open(cfg.file) } : { kind: "stdout" };
  if (target?.kind === "file") closeSync(target.fd);
  target = next;
}

/** Tests: every line to fn, synchronously; null turns the access log off. Returns the sink it
 * replaces (null: none), so a test can hand lines on and restore it. */
export function setAccessLogSink(fn: ((line: string) => void) | null): ((line: string) => void) | null {
  flushAccessLog();
  const previous = target?.kind === "sink" ? target.fn : null;
  target = fn === null ? null : { kind: "sink", fn };
  return previous;
}

/** SIGUSR1: lines written from now on go to a file opened anew under the configured name. */
export function reopenAccessLog(): void {
  if (target?.kind !== "file") return;
  flushAccessLog();
  const fd = open(target.path);
  closeSync(target.fd);
  target.fd = fd;
}

export function flushAccessLog(): void {
  scheduled = false;
  if (buffered === "" || target === null) return;
  const text = buffered;
  buffered = "";
  if (target.kind === "stdout") process.stdout.write(text);
  else if (target.kind === "file") {
    try {
      writeSync(target.fd, text);
    } catch (e) {
      process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level: "error", event: "accesslog.write_failed", code: (e as { code?: string }).code ?? "error" }) + "\n");
    }
  }
}

export function writeAccessLine(line: string): void {
  if (target === null) return;
  if (target.kind === "sink") return target.fn(line);
  buffered += line + "\n";
  if (buffered.length >= MAX_BATCH) flushAccessLog();
  else if (!scheduled) {
    scheduled = true;
    setTimeout(flushAccessLog, FLUSH_MS);
  }
}
