// The reload worker: a thread of its own that parses reloads (YAML with positions, ${…}
// substitution, schema validation, reference checks), so the thread serving requests only
// compiles the result. It runs parseConfig, the very function the synchronous path runs, and
// answers with plain data. Started once (src/config/parse-worker.ts), reused for every reload;
// the Bun binary embeds it as a second entry point (package.json `build`).
import { createHash } from "node:crypto";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { parseConfig, type Path } from "./parse.ts";

export interface ParseRequest {
  id: number;
  file: string;
  /** The config file's bytes, read by the main thread when the reload started. */
  bytes: Uint8Array;
  env: Record<string, string | undefined>;
  /** The running server.maxConfigSize: larger bytes are refused before the parse. */
  maxConfigSize?: number;
}

/** Where the paths compile may report a problem at are (compile.ts: importKeys). Key: JSON of the path. */
export type Positions = Record<string, { line: number; column: number }>;

export type ParseReply =
  | {
    id: number;
    ok: true;
    /**
     * The validated config as JSON. A config is plain data (strings, finite numbers, booleans,
     * null, arrays, objects: what YAML's toJS and the schema produce; no undefined values), so
     * JSON carries it exactly (only a -0 arrives as 0, equal in every use), and its JSON.parse
     * (~7–10 ms at 10,000 keys) blocks the main thread far less than a structured clone
     * (~50 ms for structuredClone of the same config).
     */
    json: string;
    /** sha-256 hex of `json`: configDigest of the config, computed here rather than on the main thread. */
    digest: string;
    sha256: string;
    files: string[];
    warnings: ConfigProblem[];
    positions: Positions;
  }
  | { id: number; ok: false; problems: ConfigProblem[] }
  /** An error that is not a config problem (a bug): its name only, its message may quote the file. */
  | { id: number; ok: false; unexpected: string };

/** Posted once, when the worker's modules are loaded and it takes requests. */
export interface ReadyMessage {
  ready: true;
}

/** The paths compile.ts may locate a problem at: each key pair's key and certificate, server.stateDir, the root. */
function compilePaths(config: { keypairs: readonly unknown[] }): Path[] {
  const paths: Path[] = [[], ["server", "stateDir"]];
  config.keypairs.forEach((_, i) => paths.push(["keypairs", i, "privateKey"], ["keypairs", i, "certificate"]));
  return paths;
}

function parseReply(req: ParseRequest): ParseReply {
  try {
    const parsed = parseConfig(req.bytes, req.file, { env: req.env, maxConfigSize: req.maxConfigSize });
    const json = JSON.stringify(parsed.config);
    const positions: Positions = {};
    for (const p of compilePaths(parsed.config)) positions[JSON.stringify(p)] = parsed.locate(p);
    return {
      id: req.id,
      ok: true,
      json,
      digest: createHash("sha256").update(json).digest("hex"),
      sha256: parsed.sha256,
      files: parsed.files,
      warnings: parsed.warnings,
      positions,
    };
  } catch (e) {
    if (e instanceof ConfigError) return { id: req.id, ok: false, problems: e.problems };
    return { id: req.id, ok: false, unexpected: e instanceof Error ? e.name : typeof e };
  }
}

interface WorkerScope {
  onmessage: ((e: MessageEvent<ParseRequest>) => void) | null;
  postMessage(message: ParseReply | ReadyMessage): void;
}

// Loaded as a worker only: the main thread imports nothing but types from this file.
const scope = globalThis as unknown as WorkerScope;
scope.onmessage = (e) => scope.postMessage(parseReply(e.data));
scope.postMessage({ ready: true });
