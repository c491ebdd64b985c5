// Records the secrets and tokens the suite uses, so that scripts/scan-logs.ts can check that
// none of them ever reached a gateway log line. Everything goes to $OTOROSHI_LOG_DIR/secrets.jsonl
// (one JSON object a line); without OTOROSHI_LOG_DIR these are no-ops.
import { appendFileSync } from "node:fs";
import { join } from "node:path";

export const LOG_DIR = process.env.OTOROSHI_LOG_DIR || undefined;

export type SecretRecord =
  | { type: "secret"; kind: string; owner?: string; value: string }
  /** env and files resolve the config's ${env:…} / ${file:…} references. */
  | { type: "config"; text: string; env?: Record<string, string>; files?: Record<string, string> };

function append(rec: SecretRecord): void {
  if (!LOG_DIR) return;
  appendFileSync(join(LOG_DIR, "secrets.jsonl"), JSON.stringify(rec) + "\n");
}

/** A token or secret the gateway must never log (kind: "access token" by default). */
export function recordSecret(value: string, kind = "access token", owner?: string): void {
  if (value) append({ type: "secret", kind, owner, value });
}

/** A config the gateway ran with: the scan extracts its client secrets and private keys. */
export function recordConfig(yamlText: string, ctx: { env?: Record<string, string>; files?: Record<string, string> } = {}): void {
  append({ type: "config", text: yamlText, env: ctx.env, files: ctx.files });
}
