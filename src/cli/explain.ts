// The `explain` command: checks its arguments, loads the config through the same pipeline as
// `check` (dry mode: nothing written, nothing counted), asks src/explain.ts, prints the answer.
// Exit codes: 0 answered (whatever the verdict), 1 config problems (printed as check prints
// them), 2 usage error.
import { isIP } from "node:net";
import type { CliOptions } from "../cli.ts";
import { loadSnapshot } from "../config/load.ts";
import { ConfigError, formatProblem } from "../errors.ts";
import { createRecorder, explain, formatExplanation } from "../explain.ts";

/** RFC 9110 §5.6.2: method and field names are tokens. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 5737 TEST-NET-1: a caller from the Internet, neither loopback nor a trusted proxy. */
export const DEFAULT_FROM = "192.0.2.1";

export interface Io {
  out(s: string): void;
  err(s: string): void;
}

function usage(io: Io, message: string): number {
  io.err(`otoroshi-lite: explain: ${message} (usage: explain [--config FILE] [--json] [--from IP] METHOD URL [-H 'Name: value']...)`);
  return 2;
}

export async function explainCommand(opts: CliOptions, file: string, env: Readonly<Record<string, string | undefined>>, io: Io): Promise<number> {
  const args = opts.positional ?? [];
  if (args.length !== 2) return usage(io, `needs METHOD and URL, got ${args.length} argument${args.length === 1 ? "" : "s"}`);
  const [method, url] = args as [string, string];
  if (!TOKEN.test(method)) return usage(io, "METHOD must be an HTTP method token, e.g. GET");
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) return usage(io, "URL must be an absolute http:// or https:// URL");
  const headers: [string, string][] = [];
  for (const h of opts.headers ?? []) {
    const colon = h.indexOf(":");
    const name = colon > 0 ? h.slice(0, colon).trim() : "";
    // The value is not quoted back: it may be a credential.
    if (!TOKEN.test(name)) return usage(io, `-H needs 'Name: value' with a valid header name (header #${headers.length + 1})`);
    headers.push([name, h.slice(colon + 1).trim()]);
  }
  const from = opts.from ?? DEFAULT_FROM;
  if (isIP(from) === 0) return usage(io, "--from must be an IPv4 or IPv6 address");
  let request: Request;
  try {
    request = new Request(url, { method, headers });
  } catch {
    return usage(io, "the runtime refuses this method or a header value");
  }
  void request;

  const recorder = createRecorder();
  let snapshot;
  try {
    const loaded = loadSnapshot(file, 1, { env, clock: () => Date.now(), upstreamFetch: recorder.upstreamFetch, dryRun: true });
    snapshot = loaded.snapshot;
    for (const w of loaded.parsed.warnings) io.err(`warning: ${formatProblem(w)}`);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) io.err(formatProblem(p));
    io.err(`${e.problems.length} problem${e.problems.length === 1 ? "" : "s"} in ${file}`);
    return 1;
  }
  const answer = await explain(snapshot, recorder, { method, url, headers, from });
  io.out(opts.json ? JSON.stringify(answer, null, 2) : formatExplanation(answer));
  return 0;
}
