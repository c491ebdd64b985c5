// Boot: load (fail fast) → serve → watch → graceful shutdown; and the one-shot commands.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type CliOptions, HELP, parseArgs, UsageError, VERSION } from "./cli.ts";
import { explainCommand } from "./cli/explain.ts";
import { resolveStateDir } from "./config/compile.ts";
import { compileParsed, type LoadOptions, loadParsed, loadSnapshot } from "./config/load.ts";
import { configDigest, Reloader, setWorkerFactory } from "./config/reload.ts";
import { ConfigStore } from "./config/store.ts";
import { watchConfig } from "./config/watch.ts";
import type { ParsedConfig } from "./config/parse.ts";
import { ConfigError, type ConfigProblem, formatProblem } from "./errors.ts";
import { toEpochMs } from "./plugins/apikeys/registry.ts";
import { createGateway } from "./gateway.ts";
import { type GenAlg, keygenYaml } from "./keys/generate.ts";
import { createFailureGuardFor, type FailureGuardHandle } from "./limits/failures.ts";
import { createQuotaEnforcer, type QuotaEnforcerHandle } from "./limits/quotas.ts";
import { log } from "./log.ts";
import { configureAccessLog, flushAccessLog, reopenAccessLog, unwritableAccessLog } from "./monitoring/access-log.ts";
import { Lifecycle } from "./monitoring/health.ts";
import { hashSecret } from "./plugins/secrets.ts";
import { processHealth } from "./proxy/health.ts";
import { closeAllWebSockets } from "./proxy/websocket.ts";
import { versionLine } from "./version.ts";
import type { Runtime, ServerHandle } from "./runtime/types.ts";
import { createAcme, type HttpsService, startHttps } from "./tls/https.ts";

const out = (s: string) => process.stdout.write(s.endsWith("\n") ? s : s + "\n");
const err = (s: string) => process.stderr.write(s.endsWith("\n") ? s : s + "\n");

function configPath(opts: CliOptions): string {
  return resolve(opts.config ?? process.env.OTOROSHI_CONFIG ?? "otoroshi.yaml");
}

function baseLoadOptions(runtime: Runtime, dryRun = false): LoadOptions {
  return { env: process.env, clock: () => Date.now(), upstreamFetch: (tls) => runtime.upstreamFetch(tls), dryRun };
}

const WEEK = 7 * 24 * 3600 * 1000;

/** "3 d 4 h": how far away a date is, for warnings (the date itself is a value from the file). */
function inDaysHours(ms: number): string {
  const h = Math.max(1, Math.round(ms / 3_600_000));
  return h < 24 ? `${h} h` : `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ""}`;
}

/** `check` warns about secrets and keys that stop working within 7 days. */
function expiringSecrets(parsed: ParsedConfig, file: string, now: number): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const soon = (v: number | string | null | undefined) => {
    const t = toEpochMs(v);
    return t !== null && t > now && t - now <= WEEK ? t : null;
  };
  parsed.config.apikeys.forEach((k, i) => {
    const t = soon(k.validUntil);
    if (t !== null) {
      out.push({ file, ...parsed.locate(["apikeys", i, "validUntil"]), path: `apikeys[${i}].validUntil`, message: `this API key expires in ${inDaysHours(t - now)}`, severity: "warning" });
    }
    k.previousSecrets.forEach((p, j) => {
      const u = soon(p.validUntil);
      if (u !== null) {
        out.push({
          file,
          ...parsed.locate(["apikeys", i, "previousSecrets", j, "validUntil"]),
          path: `apikeys[${i}].previousSecrets[${j}].validUntil`,
          message: `this previous secret stops working in ${inDaysHours(u - now)}`,
          severity: "warning",
        });
      }
    });
  });
  return out;
}

/** server.accessLog.file that the start could not open (the path itself is a value: not quoted). */
function accessLogProblem(parsed: ParsedConfig, file: string, code: string): ConfigProblem {
  return { file, ...parsed.locate(["server", "accessLog", "file"]), path: "server.accessLog.file", message: `cannot open the access log file for appending (${code})` };
}

function accessLogPath(parsed: ParsedConfig, file: string): string | undefined {
  const al = parsed.config.server.accessLog;
  return al.enabled && al.file !== undefined ? resolve(dirname(file), al.file) : undefined;
}

function check(runtime: Runtime, opts: CliOptions): number {
  const file = configPath(opts);
  try {
    const { parsed } = loadSnapshot(file, 1, baseLoadOptions(runtime, true));
    const accessLog = accessLogPath(parsed, file);
    const unwritable = accessLog === undefined ? null : unwritableAccessLog(accessLog);
    if (unwritable !== null) throw new ConfigError([accessLogProblem(parsed, file, unwritable)]);
    for (const w of [...parsed.warnings, ...expiringSecrets(parsed, file, Date.now())]) err(`warning: ${formatProblem(w)}`);
    out(`${file}: OK (${parsed.config.routes.length} routes, ${parsed.config.apikeys.length} API keys, ${parsed.config.keypairs.length} key pairs)`);
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) err(formatProblem(p));
    err(`${e.problems.length} problem${e.problems.length === 1 ? "" : "s"} in ${file}`);
    return 1;
  }
}

async function serve(runtime: Runtime, opts: CliOptions): Promise<number> {
  const file = configPath(opts);
  const loadOpts = baseLoadOptions(runtime);
  const lifecycle = new Lifecycle();
  let loaded;
  let quotas: QuotaEnforcerHandle;
  let guard: FailureGuardHandle | undefined;
  try {
    // The same read, parse and validation as `check` (loadSnapshot): what check accepts, start does.
    const parsed = loadParsed(file, loadOpts.env);
    const s = parsed.config.server;
    // Counters and the failed-secret limiter live for the whole process: a reload keeps them.
    try {
      quotas = createQuotaEnforcer({ stateDir: resolveStateDir(parsed.config, file), store: s.store, storeUnavailable: s.storeUnavailable, flushIntervalMs: s.countersFlushInterval });
    } catch (e) {
      throw new ConfigError([{ file, ...parsed.locate(["server", "store"]), path: "server.store", message: (e as Error).message }]);
    }
    loadOpts.quotas = quotas;
    // Shared through server.store like the quotas, so instances behind one balancer limit together.
    // The access log file is opened now: a path that cannot be written stops the start, with where.
    try {
      configureAccessLog({ enabled: s.accessLog.enabled, file: accessLogPath(parsed, file) });
    } catch (e) {
      throw new ConfigError([accessLogProblem(parsed, file, (e as { code?: string }).code ?? "error")]);
    }
    loadOpts.guard = guard = createFailureGuardFor({ maxFailures: s.failedAuth.maxFailures, windowSeconds: s.failedAuth.windowSeconds, store: s.store, storeUnavailable: s.storeUnavailable });
    loaded = { snapshot: compileParsed(parsed, file, 1, loadOpts), parsed };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const p of e.problems) err(formatProblem(p));
    err(`otoroshi-lite: not starting, ${e.problems.length} problem${e.problems.length === 1 ? "" : "s"} in ${file}`);
    return 1;
  }
  const { snapshot, parsed } = loaded;
  for (const w of parsed.warnings) log("warn", "config.warning", { location: formatProblem(w) });
  const store = new ConfigStore(snapshot);
  const server = snapshot.config.server;
  // Created before the listeners: the HTTP listener answers its HTTP-01 challenges.
  const acme = createAcme(snapshot);
  let https: HttpsService | null = null;
  const handler = createGateway(store, () => ({ runtime: runtime.name, version: VERSION, quotas: quotas.status(), ...(https ? { tls: https.status() } : {}) }), acme?.challenges ?? null, {
    lifecycle,
    store: () => quotas.status(),
  });
  const listeners: ServerHandle[] = [];
  const http = await runtime.serve({ hostname: server.host, port: opts.port ?? server.port, handler, idleTimeoutSeconds: server.idleTimeout, maxRequestBodySize: server.maxRequestBodySize });
  listeners.push(http);
  log("info", "server.listening", { protocol: "http", host: server.host, port: http.port, runtime: runtime.name, version: VERSION, generation: snapshot.generation });
  if (server.https) {
    https = await startHttps({ runtime, snapshot, handler, acme });
    listeners.push(https.handle);
    log("info", "server.listening", { protocol: "https", host: server.host, port: https.port, names: https.names(), acme: acme !== null });
  }

  // Reloads parse and validate in a worker thread, so requests keep flowing during a reload.
  setWorkerFactory((entry) => runtime.createWorker(entry));
  const reloader = new Reloader(file, store, loadOpts, configDigest(parsed.config));
  const watcher = watchConfig({ file, onChange: (trigger) => void reloader.reload(trigger) });
  watcher.setExtraFiles(snapshot.files);
  // A change made between the first read and the watcher starting would otherwise go unseen;
  // this costs one hash when nothing changed.
  void reloader.reload("start");
  reloader.setOnApplied((files) => {
    watcher.setExtraFiles(files);
    // Key pair files (a certbot renewal) and the routes' names (ACME) may have changed.
    https?.applied(store.current());
  });
  runtime.onSignal("SIGHUP", () => void reloader.reload("SIGHUP", true));
  // logrotate renames the access log file, then signals: lines from now on go to a new file.
  runtime.onSignal("SIGUSR1", () => {
    try {
      reopenAccessLog();
      log("info", "accesslog.reopened", {});
    } catch (e) {
      log("error", "accesslog.reopen_failed", { code: (e as { code?: string }).code ?? "error" });
    }
  });
  lifecycle.markReady();

  await new Promise<void>((done) => {
    let stopping = false;
    let closing = false;
    let delayTimer: ReturnType<typeof setTimeout> | undefined;
    const close = () => {
      if (closing) return;
      closing = true;
      clearTimeout(delayTimer);
      log("info", "server.closing", {});
      // After the shutdownDelay drain, open WebSockets (which would hold a graceful stop for
      // ever) get a 1001 "going away" (RFC 6455 §7.4.1) while HTTP calls in flight finish.
      closeAllWebSockets();
      // In-flight requests finish; a stuck one does not hold the process forever.
      const grace = new Promise<void>((r) => setTimeout(r, 10_000).unref?.());
      void Promise.race([Promise.all(listeners.map((l) => l.stop(false))), grace]).then(() => done());
    };
    const stop = (signal: string) => {
      // A second signal during server.shutdownDelay cuts the delay short.
      if (stopping) return close();
      stopping = true;
      // ready answers 503 from now on; requests are still served for shutdownDelay, so the load
      // balancer has time to see it and stop sending new ones before the listeners close.
      lifecycle.markStopping();
      const delay = store.current().config.server.shutdownDelay;
      log("info", "server.stopping", { signal, shutdownDelay: delay });
      watcher.close();
      https?.stop();
      if (delay > 0) delayTimer = setTimeout(close, delay);
      else close();
    };
    runtime.onSignal("SIGTERM", () => stop("SIGTERM"));
    runtime.onSignal("SIGINT", () => stop("SIGINT"));
  });
  processHealth.stopAll();
  await quotas.close();
  await guard?.close();
  flushAccessLog();
  log("info", "server.stopped", {});
  return 0;
}

function readStdin(): string {
  try {
    return readFileSync(0, "utf8").replace(/\r?\n$/, "");
  } catch {
    return "";
  }
}

export async function main(runtime: Runtime): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseArgs(runtime.args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`otoroshi-lite: ${e.message}`);
    return 2;
  }
  switch (opts.command) {
    case "help":
      out(HELP);
      return 0;
    case "version":
      out(versionLine(runtime.name, runtime.version));
      return 0;
    case "check":
      return check(runtime, opts);
    case "explain":
      return explainCommand(opts, configPath(opts), process.env, { out, err });
    case "keygen": {
      const alg = (opts.alg ?? "ES256") as GenAlg;
      if (!["RS256", "ES256", "ES384", "ES512", "EdDSA"].includes(alg)) {
        err(`otoroshi-lite: --alg must be one of RS256, ES256, ES384, ES512, EdDSA (got "${alg}")`);
        return 2;
      }
      out(keygenYaml(opts.id ?? `key-${alg.toLowerCase()}-${new Date().toISOString().slice(0, 10)}`, alg));
      return 0;
    }
    case "hash-secret": {
      const secret = opts.secret ?? readStdin();
      if (!secret) {
        err("otoroshi-lite: hash-secret needs a secret (argument or stdin)");
        return 2;
      }
      out(hashSecret(secret));
      return 0;
    }
    case "apikey-create": {
      if (!opts.clientId || !/^[^\s:]+$/.test(opts.clientId)) {
        err("otoroshi-lite: apikey create needs --client-id ID (no ':' or whitespace)");
        return 2;
      }
      const secret = randomBytes(32).toString("base64url");
      out(`# client secret for ${opts.clientId}, shown once; give it to the client and keep it out of the config:\n#   ${secret}\n`);
      out(`# paste under apikeys:\n- clientId: ${opts.clientId}\n  clientSecret: ${hashSecret(secret)}\n`);
      return 0;
    }
    case "serve":
      if (!existsSync(configPath(opts))) {
        err(`otoroshi-lite: config file ${configPath(opts)} not found (use --config FILE or OTOROSHI_CONFIG)`);
        return 1;
      }
      return serve(runtime, opts);
  }
}
