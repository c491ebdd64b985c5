// Reload cost at size: 1,000 routes, 10,000 API keys, 10 key pairs (8 EC P-256, 2 RSA-2048).
//   bun bench/reload.ts [--reloads 10] [--seconds 10] [--connections 32] [--interval 500] [--scale 1] [--no-traffic]
//   bun bench/reload.ts --write FILE     (only writes the generated config, e.g. to profile it)
//
// 1. In process: the Reloader on a temp file, alternating two variants so the content changes;
//    median / p95 / max of the whole reload, the longest stall of this thread's event loop during
//    each (a 1 ms timer's lateness: what a request arriving then waits at worst), and where the
//    time goes, on the worker (parse, validate, references) and on the main thread (compile).
// 2. Traffic: the real gateway (dist/otoroshi-lite if built, else `bun src/bin/bun.ts`) on
//    127.0.0.1 in front of an echo backend in this process; a bounded load (wrk if installed,
//    else 32 fetch workers) measures p50 / p99 / max latency without reloads, then with the file
//    rewritten every 500 ms. Every process is stopped by PID and the temp dir removed.
import { spawn, spawnSync, type Subprocess } from "bun";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { isMap, LineCounter, parseDocument } from "yaml";
import { compileSnapshot } from "../src/config/compile.ts";
import { freezeInSlices, type LoadOptions, loadSnapshot } from "../src/config/load.ts";
import { parseConfig } from "../src/config/parse.ts";
import { checkReferences } from "../src/config/references.ts";
import { configDigest, Reloader } from "../src/config/reload.ts";
import { Config } from "../src/config/schema.ts";
import { ConfigStore } from "../src/config/store.ts";
import { generateKeyPairPem } from "../src/keys/generate.ts";
import { importKeyPair } from "../src/keys/keyring.ts";
import { addLogTap, setLogLevel } from "../src/log.ts";
import { ApiKeyRegistry, otoBearerFor } from "../src/plugins/apikeys/registry.ts";
import { startEchoBackend } from "../tests/helpers/echo-backend.ts";
import { bunUpstream } from "../tests/helpers/gateway.ts";

const ROOT = resolve(import.meta.dir, "..");
const argv = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const RELOADS = opt("reloads", 10);
const SECONDS = opt("seconds", 10);
const CONNECTIONS = opt("connections", 32);
const INTERVAL_MS = opt("interval", 500);
const TRAFFIC = !argv.includes("--no-traffic");

// --scale 0.1 → 100 routes and 1,000 API keys (the 10 key pairs stay).
const SCALE = opt("scale", 1);
const ROUTES = Math.max(1, Math.round(1000 * SCALE));
const APIKEYS = Math.max(1, Math.round(10_000 * SCALE));
const KEYPAIRS: ("ES256" | "RS256")[] = ["ES256", "ES256", "RS256", "ES256", "ES256", "ES256", "RS256", "ES256", "ES256", "ES256"];

// ---------------------------------------------------------------- the config

const pems = KEYPAIRS.map((alg) => generateKeyPairPem(alg).privateKeyPem);
const indent = (text: string, n: number) => text.trimEnd().split("\n").map((l) => " ".repeat(n) + l).join("\n");

/** The whole config; `variant` changes every route's backend root, so two variants differ everywhere. */
function generate(variant: "a" | "b", backendPort: number): string {
  const out: string[] = [];
  out.push("plugins:", "  - plugin: ClientCredentialService", "    config: { domain: oauth.bench.test, secure: false, defaultKeyPair: kp-0 }", "routes:");
  for (let i = 0; i < ROUTES; i++) {
    out.push(
      `  - id: r${i}`,
      `    groups: [g${i % 50}]`,
      "    frontend:",
      `      domains: [r${i}.bench.test${i % 4 === 0 ? `, r${i}.bench.test/api/v2` : ""}]`,
      "    backend:",
      `      root: /${variant}`,
      "      targets:",
      `        - hostname: 127.0.0.1`,
      `          port: ${backendPort}`,
      ...(i % 3 === 0 ? [`        - hostname: 127.0.0.1`, `          port: ${backendPort}`, "          weight: 2"] : []),
    );
    if (i % 2 === 1) out.push("    plugins:", "      - plugin: Apikeys");
  }
  out.push("apikeys:");
  for (let i = 0; i < APIKEYS; i++) {
    out.push(
      `  - clientId: client-${i}`,
      `    clientSecret: secret-${variant}-${i}-${(i * 2654435761) % 1e9}`,
      `    authorizedEntities: [group_g${i % 50}${i % 7 === 0 ? `, route_r${i % ROUTES}` : ""}]`,
    );
    if (i % 10 === 0) out.push("    metadata:", `      jwt-sign-keypair: kp-${i % KEYPAIRS.length}`);
  }
  out.push("keypairs:");
  pems.forEach((pem, i) => out.push(`  - id: kp-${i}`, "    privateKey: |", indent(pem, 6)));
  return out.join("\n") + "\n";
}

// ---------------------------------------------------------------- stats

const ms = (x: number) => Math.round(x * 10) / 10;
function quantile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}
function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, median: ms(quantile(s, 0.5)), p95: ms(quantile(s, 0.95)), max: ms(s[s.length - 1] ?? NaN) };
}
function time<T>(fn: () => T): [T, number] {
  const t = performance.now();
  const v = fn();
  return [v, performance.now() - t];
}

// ---------------------------------------------------------------- 1. in process

/** The event loop's longest stall while fn runs: how late a 1 ms timer fired, at worst. */
async function withStallProbe<T>(fn: () => Promise<T>): Promise<[T, number]> {
  let last = performance.now();
  let worst = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 1);
  try {
    const v = await fn();
    worst = Math.max(worst, performance.now() - last);
    return [v, worst];
  } finally {
    clearInterval(probe);
  }
}

async function inProcess(dir: string): Promise<void> {
  setLogLevel("error");
  const events: Record<string, unknown>[] = [];
  addLogTap((line) => events.push(JSON.parse(line) as Record<string, unknown>), { level: "info" });
  const file = join(dir, "otoroshi.yaml");
  const variants = { a: generate("a", 9), b: generate("b", 9) };
  writeFileSync(file, variants.a);
  console.log(
    `config: ${ROUTES} routes, ${APIKEYS} API keys, ${KEYPAIRS.length} key pairs (${KEYPAIRS.filter((a) => a === "RS256").length} RSA); ${(Buffer.byteLength(variants.a) / 1e6).toFixed(2)} MB, ${
      variants.a.split("\n").length
    } lines`,
  );

  const lo: LoadOptions = { env: {}, clock: () => Date.now(), upstreamFetch: bunUpstream };
  const [{ snapshot, parsed }, initialMs] = time(() => loadSnapshot(file, 1, lo));
  const store = new ConfigStore(snapshot);
  const reloader = new Reloader(file, store, lo, configDigest(parsed.config));
  const durations: number[] = [];
  const stalls: number[] = [];
  const parsers = new Map<string, number>();
  // Warm-ups until two were parsed by the worker (the first reloads of a fresh process may come
  // before the worker is up: they parse on this thread). "parsed by" reports what was measured.
  for (let i = 0, warm = 0; durations.length < RELOADS; i++) {
    writeFileSync(file, i % 2 ? variants.a : variants.b);
    const t = performance.now();
    const [outcome, stall] = await withStallProbe(() => reloader.reload("bench"));
    const d = performance.now() - t;
    if (outcome !== "applied") throw new Error(`reload ${i}: ${outcome}`);
    const parser = String(events.filter((e) => e.event === "config.reloaded").at(-1)?.parser);
    if (warm < 2 || (parser !== "worker" && i < 20)) {
      if (parser === "worker") warm++;
      continue;
    }
    durations.push(d);
    stalls.push(stall);
    parsers.set(parser, (parsers.get(parser) ?? 0) + 1);
  }
  const s = summary(durations);
  const st = summary(stalls);
  console.log(`initial load: ${ms(initialMs)} ms`);
  console.log(`reload (in process, ${s.n} runs after warm-ups; parsed by: ${[...parsers].map(([k, v]) => `${k} ${v}`).join(", ")}): median ${s.median} ms, p95 ${s.p95} ms, max ${s.max} ms`);
  console.log(`longest event-loop stall during a reload: median ${st.median} ms, max ${st.max} ms`);

  // Where the time goes, on the same file (each phase on its own, median of 5).
  const text = readFileSync(file, "utf8");
  const phases: Record<string, number[]> = {};
  const add = (k: string, v: number) => (phases[k] ??= []).push(v);
  for (let i = 0; i < 5; i++) {
    const [doc, tYaml] = time(() => parseDocument(text, { lineCounter: new LineCounter(), prettyErrors: false, uniqueKeys: true, strict: true, merge: false }));
    if (!isMap(doc.contents)) throw new Error("not a map");
    const [raw, tJs] = time(() => doc.toJS({ maxAliasCount: 100 }) as unknown);
    const [res, tZod] = time(() => Config.safeParse(raw));
    if (!res.success) throw new Error("invalid");
    const [, tRefs] = time(() => checkReferences(res.data));
    const [p, tParse] = time(() => parseConfig(text, file, { env: {} }));
    const [json, tJson] = time(() => JSON.stringify(p.config));
    const [, tSha] = time(() => createHash("sha256").update(json).digest("hex"));
    const [config, tJsonParse] = time(() => JSON.parse(json) as typeof p.config);
    const [, tFreeze] = await timeAsync(() => freezeInSlices(config, Infinity));
    const [, tKeys] = time(() => p.config.keypairs.forEach((k) => importKeyPair(k.id, k.privateKey)));
    const [, tRegistry] = time(() => new ApiKeyRegistry(p.config.apikeys));
    const [, tBearers] = time(() => p.config.apikeys.forEach((k) => otoBearerFor(k.clientId, k.clientSecret)));
    const [, tCompile] = time(() => compileSnapshot({ ...p, config }, file, 2, lo)); // already frozen, as in a reload
    add("worker: YAML parse (with positions)", tYaml);
    add("worker: YAML → JS", tJs);
    add("worker: schema validation (zod)", tZod);
    add("worker: reference checks", tRefs);
    add("worker: = parseConfig total", tParse);
    add("worker: config → JSON + digest", tJson + tSha);
    add("main: JSON → config", tJsonParse);
    add("main: deep freeze (in slices)", tFreeze);
    add("main: key import (10 pairs)", tKeys);
    add("main: API key registry", tRegistry);
    add("(not done: every otoapk_ HMAC)", tBearers);
    add("main: = compileSnapshot (after the freeze)", tCompile);
  }
  console.log("phases (median of 5, ms):");
  for (const [k, v] of Object.entries(phases)) console.log(`  ${k.padEnd(38)} ${summary(v).median}`);
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const v = await fn();
  return [v, performance.now() - t];
}

// ---------------------------------------------------------------- 2. traffic

interface Latency {
  requests: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
}

function gatewayCommand(file: string): string[] {
  const bin = join(ROOT, "dist/otoroshi-lite");
  const base = existsSync(bin) ? [bin] : [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/bin/bun.ts")];
  return [...base, "--config", file, "--port", "0"];
}

async function startGatewayProcess(file: string, dir: string): Promise<{ proc: Subprocess; port: number; logs: Record<string, unknown>[] }> {
  const proc = spawn(gatewayCommand(file), { cwd: dir, env: { ...process.env, OTOROSHI_LOG_LEVEL: "info" }, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  const logs: Record<string, unknown>[] = [];
  let onListening: (port: number) => void = () => {};
  const listening = new Promise<number>((r) => (onListening = r));
  void (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of proc.stderr as unknown as AsyncIterable<Uint8Array>) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const l = JSON.parse(line) as Record<string, unknown>;
          logs.push(l);
          if (l.event === "server.listening" && l.protocol === "http") onListening(Number(l.port));
        } catch {
          process.stderr.write(line + "\n");
        }
      }
    }
  })();
  const port = await Promise.race([
    listening,
    new Promise<never>((_, rej) => setTimeout(() => rej(new Error("the gateway did not start within 60 s")), 60_000).unref()),
    proc.exited.then((c) => Promise.reject(new Error(`the gateway exited with ${c}`))),
  ]);
  return { proc, port, logs };
}

const hasWrk = spawnSync(["sh", "-c", "command -v wrk"]).exitCode === 0;

/** wrk's "    50%    1.23ms" lines → ms. */
function wrkMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === "us" ? n / 1000 : unit === "ms" ? n : unit === "s" ? n * 1000 : unit === "m" ? n * 60_000 : NaN;
}

async function loadWithWrk(url: string, host: string, seconds: number): Promise<Latency> {
  const p = spawn(["wrk", "-t2", `-c${CONNECTIONS}`, `-d${seconds}s`, "--timeout", "5s", "--latency", "-H", `Host: ${host}`, url], { stdout: "pipe", stderr: "pipe" });
  const killer = setTimeout(() => p.kill("SIGKILL"), (seconds + 30) * 1000);
  const [out] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  clearTimeout(killer);
  const pct = (q: string) => {
    const m = new RegExp(`^\\s*${q}%\\s+([\\d.]+)(us|ms|s|m)\\b`, "m").exec(out);
    return m ? wrkMs(m[1]!, m[2]!) : NaN;
  };
  const max = /^\s*Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)/m.exec(out);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = non2xx + (errs ? errs.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { requests, errors, p50: pct("50"), p99: pct("99"), max: max ? wrkMs(max[1]!, max[2]!) : NaN };
}

async function loadWithFetch(url: string, host: string, seconds: number): Promise<Latency> {
  const lat: number[] = [];
  let errors = 0;
  const stopAt = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < stopAt) {
        const t = performance.now();
        try {
          const res = await fetch(url, { headers: { host }, signal: AbortSignal.timeout(5000) });
          await res.arrayBuffer();
          if (res.status !== 200) errors++;
        } catch {
          errors++;
        }
        lat.push(performance.now() - t);
      }
    }),
  );
  const s = [...lat].sort((a, b) => a - b);
  return { requests: s.length, errors, p50: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1] ?? NaN };
}

async function traffic(dir: string): Promise<void> {
  const backend = await startEchoBackend();
  const file = join(dir, "gateway.yaml");
  const variants = [generate("a", backend.port), generate("b", backend.port)];
  writeFileSync(file, variants[0]!);
  const gw = await startGatewayProcess(file, dir);
  const load = hasWrk ? loadWithWrk : loadWithFetch;
  const url = `http://127.0.0.1:${gw.port}/x`;
  const host = `r${(ROUTES >> 1) & ~1}.bench.test`; // mid-table; even routes are open (odd ones have Apikeys)
  try {
    console.log(
      `\ntraffic: ${gatewayCommand(file)[0]!.includes("dist") ? "dist/otoroshi-lite" : "bun src/bin/bun.ts"}, ${
        hasWrk ? "wrk -t2" : "fetch workers"
      }, ${CONNECTIONS} connections, ${SECONDS} s per run, GET ${host}/x → echo backend`,
    );
    await load(url, host, 2); // warm-up
    const quiet = await load(url, host, SECONDS);
    const mark = gw.logs.length;
    let writes = 0;
    const rewriter = setInterval(() => writeFileSync(file, variants[++writes % 2]!), INTERVAL_MS);
    let busy: Latency;
    try {
      busy = await load(url, host, SECONDS);
    } finally {
      clearInterval(rewriter);
    }
    // The last write's reload may still be running; give it a bounded moment to log.
    const deadline = Date.now() + 5000;
    const reloads = () => gw.logs.slice(mark).filter((l) => l.event === "config.reloaded");
    while (reloads().length < writes && Date.now() < deadline) await Bun.sleep(50);
    const rejected = gw.logs.slice(mark).filter((l) => l.event === "config.rejected").length;
    const byWorker = reloads().filter((l) => l.parser === "worker").length;
    const durs = summary(reloads().map((l) => Number(l.durationMs)));
    const row = (name: string, l: Latency) =>
      `  ${name.padEnd(22)} ${String(l.requests).padStart(8)} req  ${String(l.errors).padStart(3)} err  p50 ${ms(l.p50)} ms  p99 ${ms(l.p99)} ms  max ${ms(l.max)} ms`;
    console.log(row("no reloads", quiet));
    console.log(row(`reload every ${INTERVAL_MS} ms`, busy));
    console.log(
      `  ${writes} rewrites, ${reloads().length} reloads applied (${byWorker} parsed by the worker), ${rejected} rejected; reload in the gateway: median ${durs.median} ms, p95 ${durs.p95} ms, max ${durs.max} ms`,
    );
    console.log(`  extra p99: ${ms(busy.p99 - quiet.p99)} ms; max during reloads / quiet p99: ${(busy.max / quiet.p99).toFixed(1)}x (aim: ≤ 2x)`);
  } finally {
    gw.proc.kill("SIGTERM");
    const killer = setTimeout(() => gw.proc.kill("SIGKILL"), 10_000);
    await gw.proc.exited;
    clearTimeout(killer);
    await backend.stop();
  }
}

const writeTo = argv.indexOf("--write");
if (writeTo >= 0) {
  writeFileSync(argv[writeTo + 1]!, generate("a", 8080));
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), "oto-bench-reload-"));
try {
  await inProcess(dir);
  if (TRAFFIC) await traffic(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
