// Checks that no secret or token the test suite used appears in any gateway log line.
//
//   bun scripts/scan-logs.ts [dir]        (dir defaults to $OTOROSHI_LOG_DIR)
//
// scripts/test.sh sets OTOROSHI_LOG_DIR for the whole run: tests/setup.ts keeps every in-process
// log line there (inprocess-<pid>.log), tests/e2e/process.ts every stderr line of a gateway
// process (process-<pid>.log), and tests/helpers/secrets.ts the configs and tokens the suite used
// (secrets.jsonl). From each config this script derives what an attacker could replay:
//   - every plain clientSecret and previousSecrets[].secret (sha256: hashes are skipped),
//   - base64 and base64url of "clientId:secret" (what a Basic Authorization header carries),
//   - the HMAC part of the otoapk_ bearer of each plain secret,
//   - every body line of each privateKey PEM,
//   - server.monitoring.accessKey,
// plus every recorded token and its signature. A hit prints where and what (never the secret)
// and exits 1; so does an empty capture (no log line at all means the capture is broken).
import { readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parseDocument } from "yaml";
import { otoBearerFor } from "../src/plugins/apikeys/registry.ts";
import { isHashedSecret } from "../src/plugins/secrets.ts";
import type { SecretRecord } from "../tests/helpers/secrets.ts";

/** Shorter values collide with ordinary words in log lines. */
const MIN_LENGTH = 6;

interface Needle {
  value: string;
  kind: string;
  owner: string;
}

const dir = process.argv[2] ?? process.env.OTOROSHI_LOG_DIR;
if (!dir) {
  console.error("usage: bun scripts/scan-logs.ts <dir>   (or set OTOROSHI_LOG_DIR)");
  process.exit(2);
}

const needles = new Map<string, Needle>();
let skippedShort = 0;
let unresolved = 0;
let configs = 0;
let invalidConfigs = 0;

function add(value: string, kind: string, owner: string): void {
  if (value.length < MIN_LENGTH) {
    skippedShort++;
    return;
  }
  if (!needles.has(value)) needles.set(value, { value, kind, owner });
}

type Ctx = { env: Record<string, string>; files: Record<string, string> };

/** Resolves ${env:…} and ${file:…} as the gateway would; undefined when a reference is unknown. */
function resolveRefs(value: string, ctx: Ctx): string | undefined {
  let missing = false;
  const out = value.replace(/\$\{(env|file):([^}]*)\}|\$\$\{/g, (whole, kind: string | undefined, arg: string | undefined) => {
    if (!kind) return "${";
    const ref = (arg ?? "").trim();
    const found = kind === "env" ? ctx.env[ref] : (ctx.files[ref] ?? ctx.files[basename(ref)]);
    if (found === undefined) {
      missing = true;
      return whole;
    }
    return kind === "file" ? found.replace(/\r?\n$/, "") : found;
  });
  if (missing) unresolved++;
  return missing ? undefined : out;
}

function addClientSecret(clientId: string | undefined, secret: string, kind: string): void {
  if (isHashedSecret(secret)) return;
  const owner = clientId ?? "an unnamed key";
  add(secret, kind, owner);
  if (clientId === undefined) return;
  const pair = Buffer.from(`${clientId}:${secret}`, "utf8");
  add(pair.toString("base64"), "Basic credentials (base64)", owner);
  add(pair.toString("base64").replace(/=+$/, ""), "Basic credentials (base64)", owner);
  add(pair.toString("base64url"), "Basic credentials (base64url)", owner);
  add(otoBearerFor(clientId, secret).slice(`otoapk_${clientId}_`.length), "otoapk_ bearer", owner);
}

function addPrivateKey(id: string | undefined, pem: string): void {
  const body = pem
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("-----"));
  // Whole base64 lines only; a short last line could match anything.
  for (const line of body) if (line.length >= 16) add(line, "privateKey PEM line", `key pair ${id ?? "(no id)"}`);
}

function walk(node: unknown, ctx: Ctx, depth = 0): void {
  if (depth > 20 || node === null || typeof node !== "object") return;
  if (Array.isArray(node)) {
    for (const n of node) walk(n, ctx, depth + 1);
    return;
  }
  const o = node as Record<string, unknown>;
  const clientId = typeof o.clientId === "string" ? o.clientId : undefined;
  const str = (v: unknown) => (typeof v === "string" ? resolveRefs(v, ctx) : undefined);
  const secret = str(o.clientSecret);
  if (secret) addClientSecret(clientId, secret, "clientSecret");
  if (Array.isArray(o.previousSecrets)) {
    for (const p of o.previousSecrets) {
      const s = str((p as Record<string, unknown> | null)?.secret);
      if (s) addClientSecret(clientId, s, "previous secret");
    }
  }
  const pem = str(o.privateKey);
  if (pem) addPrivateKey(typeof o.id === "string" ? o.id : undefined, pem);
  // server.monitoring.accessKey: lets anyone read the monitoring endpoints.
  const accessKey = str(o.accessKey);
  if (accessKey) add(accessKey, "monitoring accessKey", "server.monitoring");
  for (const v of Object.values(o)) walk(v, ctx, depth + 1);
}

/** Invalid YAML (tests feed the gateway broken files on purpose): pick the values line by line. */
function scavenge(text: string, ctx: Ctx): void {
  let clientId: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    const id = /\bclientId:\s*["']?([^"'\s#,}]+)/.exec(line);
    if (id) clientId = id[1];
    const s = /\b(clientSecret|secret):\s*["']?([^"'\s#,}]+)/.exec(line);
    const v = s ? resolveRefs(s[2], ctx) : undefined;
    if (s && v) addClientSecret(clientId, v, s[1] === "secret" ? "previous secret" : "clientSecret");
    const ak = /\baccessKey:\s*["']?([^"'\s#,}]+)/.exec(line);
    const akv = ak ? resolveRefs(ak[1], ctx) : undefined;
    if (akv) add(akv, "monitoring accessKey", "server.monitoring");
  }
  for (const m of text.matchAll(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g)) addPrivateKey(undefined, m[0]);
}

function addConfig(text: string, ctx: Ctx): void {
  configs++;
  let value: unknown;
  try {
    const doc = parseDocument(text, { uniqueKeys: false, strict: false });
    if (doc.errors.length) throw doc.errors[0];
    value = doc.toJS({ maxAliasCount: 100 });
  } catch {
    invalidConfigs++;
    scavenge(text, ctx);
    return;
  }
  walk(value, ctx);
}

function tokenOwner(token: string): string {
  try {
    const p = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
    return String(p.client_id ?? p.sub ?? "an unknown client");
  } catch {
    return "an unknown client";
  }
}

// --- what to look for ---------------------------------------------------------------------
let records: SecretRecord[] = [];
try {
  records = readFileSync(join(dir, "secrets.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SecretRecord);
} catch (e) {
  if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
}
for (const r of records) {
  if (r.type === "config") addConfig(r.text, { env: r.env ?? {}, files: r.files ?? {} });
  else {
    const owner = r.owner ?? tokenOwner(r.value);
    add(r.value, r.kind, owner);
    const parts = r.value.split(".");
    if (parts.length === 3) add(parts[2], `${r.kind} signature`, owner);
  }
}

// --- where to look ------------------------------------------------------------------------
// Needles are indexed by their first MIN_LENGTH characters, so each line costs one map lookup
// per position instead of one search per needle.
const index = new Map<string, Needle[]>();
for (const n of needles.values()) {
  const k = n.value.slice(0, MIN_LENGTH);
  const list = index.get(k);
  if (list) list.push(n);
  else index.set(k, [n]);
}

function findIn(line: string): Needle | undefined {
  for (let i = 0; i + MIN_LENGTH <= line.length; i++) {
    const candidates = index.get(line.slice(i, i + MIN_LENGTH));
    if (candidates) { for (const n of candidates) if (line.startsWith(n.value, i)) return n; }
  }
  return undefined;
}

const logFiles = readdirSync(dir).filter((f) => f.endsWith(".log")).sort();
let lines = 0;
let hits = 0;
for (const f of logFiles) {
  const text = readFileSync(join(dir, f), "utf8");
  const all = text.split("\n");
  if (all[all.length - 1] === "") all.pop();
  all.forEach((line, i) => {
    lines++;
    const n = findIn(line);
    if (!n) return;
    hits++;
    let event = "";
    try {
      const e = (JSON.parse(line) as { event?: unknown }).event;
      if (typeof e === "string") event = ` (event ${JSON.stringify(e)})`;
    } catch {
      // Not a JSON line: reported without an event name.
    }
    console.log(`${f}:${i + 1}: found ${n.kind} of ${n.owner}${event}`);
  });
}

const kinds = new Map<string, number>();
for (const n of needles.values()) kinds.set(n.kind, (kinds.get(n.kind) ?? 0) + 1);
console.log(
  `log scan: ${lines} lines in ${logFiles.length} files; ${needles.size} secrets checked ` +
    `(${[...kinds].map(([k, c]) => `${c} ${k}`).join(", ") || "none"}) from ${configs} configs` +
    `${invalidConfigs ? ` (${invalidConfigs} not valid YAML, read line by line)` : ""} and ` +
    `${records.filter((r) => r.type === "secret").length} recorded tokens; ` +
    `${skippedShort} values shorter than ${MIN_LENGTH} characters skipped` +
    `${unresolved ? `; ${unresolved} values with an unknown \${env:…}/\${file:…} reference skipped` : ""}`,
);
if (lines === 0) {
  console.log("log scan: FAILED, no log line was captured (is OTOROSHI_LOG_DIR passed to the tests?)");
  process.exit(1);
}
if (hits) {
  console.log(`log scan: FAILED, ${hits} line${hits === 1 ? "" : "s"} carry a secret`);
  process.exit(1);
}
console.log("log scan: OK, no secret in any log line");
