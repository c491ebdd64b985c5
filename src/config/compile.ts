// compile: import keys once, build indexes and each plugin from its config slice, build the
// handler. The snapshot is frozen; nothing in it changes after this function returns.
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { type CompiledRoute, createHandler, type HandlerParts, type Sink } from "../handler.ts";
import { createKeyring, importKeyPair, KeyImportError, type KeyPair, type Keyring } from "../keys/keyring.ts";
import { generateKeyPairPem } from "../keys/generate.ts";
import { loadOrCreateKeyPair, StateDirError } from "../keys/state.ts";
import { log } from "../log.ts";
import { metrics } from "../monitoring/metrics.ts";
import type { RequestRecord } from "../monitoring/observe.ts";
import { type AddressMatcher, compileAddressMatcher } from "../net/cidr.ts";
import { apikeysAssertedHeaders, createApikeysStage } from "../plugins/apikeys/index.ts";
import { ApiKeyRegistry } from "../plugins/apikeys/registry.ts";
import { createClientCredentialService } from "../plugins/client-credentials/index.ts";
import type { AccessStage, FailureGuard, QuotaEnforcer, TokenVerifier } from "../plugins/types.ts";
import { HealthRegistry, processHealth } from "../proxy/health.ts";
import { compileFailover } from "../proxy/retry.ts";
import type { ForwardTarget } from "../proxy/forward.ts";
import { assertedHeaderSet, CLIENT_ID_HEADER } from "../proxy/headers.ts";
import { LimiterRegistry, processLimiters, UpstreamBudget } from "../proxy/limiter.ts";
import { hostHeader, targetOrigin } from "../proxy/url.ts";
import { Router } from "../router/router.ts";
import type { ConnInfo, UpstreamFetch, UpstreamTls } from "../runtime/types.ts";
import { type ParsedConfig, type Path, pathToString } from "./parse.ts";
import { type Config, DEFAULT_SIGNING_KEY_PAIR } from "./schema.ts";

export interface CompileDeps {
  upstreamFetch: (tls?: UpstreamTls) => UpstreamFetch;
  /** Epoch ms. */
  clock: () => number;
  /** Overrides server.stateDir / the config file's directory. */
  stateDir?: string;
  guard?: FailureGuard | null;
  quotas?: QuotaEnforcer | null;
  /** `check`: never write to the state directory (a missing generated key is made in memory). */
  dryRun?: boolean;
  /** Per-target call limits, kept across reloads; default: the process's own. */
  limiters?: LimiterRegistry;
  /** Target health and breakers, kept across reloads; default: the process's own. */
  health?: HealthRegistry;
}

export interface Snapshot {
  readonly generation: number;
  readonly sha256: string;
  readonly loadedAt: string;
  readonly file: string;
  readonly config: Config;
  /** Files read through ${file:…} (watched for changes). */
  readonly files: readonly string[];
  readonly keyring: Keyring;
  readonly signingKeys: Keyring;
  readonly counts: { routes: number; apikeys: number; keypairs: number };
  /** server.trustedProxies, compiled. */
  readonly trustedProxies: AddressMatcher;
  /** Headers some route sets for its backend, folded ('_' read as '-'): removed from every
   * client request on every route. */
  readonly assertedHeaders: ReadonlySet<string>;
  /** What the handler was built from: `explain` routes with the very same router and sinks. */
  readonly parts: HandlerParts;
  handle(req: Request, info: ConnInfo, rec?: RequestRecord): Promise<Response>;
}

// RFC 7468 §4 labels: a key import message may name the label it found; any other text between
// "BEGIN " and the dashes came from the file (a value: not quoted).
const PEM_LABELS = new Set([
  "PRIVATE KEY",
  "ENCRYPTED PRIVATE KEY",
  "RSA PRIVATE KEY",
  "EC PRIVATE KEY",
  "DSA PRIVATE KEY",
  "OPENSSH PRIVATE KEY",
  "PUBLIC KEY",
  "RSA PUBLIC KEY",
  "CERTIFICATE",
  "TRUSTED CERTIFICATE",
  "CERTIFICATE REQUEST",
  "NEW CERTIFICATE REQUEST",
  "X509 CRL",
  "PKCS7",
  "CMS",
  "EC PARAMETERS",
  "DH PARAMETERS",
]);
function withoutPemLabel(message: string): string {
  return message.replace(/'BEGIN ([^']*)'/g, (whole, label: string) => (PEM_LABELS.has(label) ? whole : "'BEGIN …'"));
}

/** Why the start could not create files in dir (an errno code), or null when it could. */
function unwritable(dir: string): string | null {
  for (let d = dir;;) {
    try {
      if (!statSync(d).isDirectory()) return "ENOTDIR: not a directory";
      accessSync(d, constants.W_OK | constants.X_OK);
      return null;
    } catch (e) {
      const code = (e as { code?: string }).code ?? "error";
      const parent = dirname(d);
      if (code !== "ENOENT" || parent === d) return code;
      d = parent; // mkdir -p would create it: can the nearest existing ancestor take it?
    }
  }
}

export function resolveStateDir(config: Config, file: string, override?: string): string {
  if (override) return resolve(override);
  const base = dirname(resolve(file));
  return config.server.stateDir ? resolve(base, config.server.stateDir) : base;
}

function importKeys(config: Config, parsed: ParsedConfig, file: string, stateDir: string, problems: ConfigProblem[], dryRun: boolean): Map<string, KeyPair> {
  const pairs = new Map<string, KeyPair>();
  const at = (path: Path, message: string) => problems.push({ file, ...parsed.locate(path), path: pathToString(path), message: withoutPemLabel(message) });
  config.keypairs.forEach((k, i) => {
    try {
      pairs.set(k.id, importKeyPair(k.id, k.privateKey, k.certificate));
    } catch (e) {
      if (!(e instanceof KeyImportError)) throw e;
      const aboutCert = k.certificate !== undefined && /certificate/.test(e.message) && !e.message.startsWith("expected a private key");
      at(["keypairs", i, aboutCert ? "certificate" : "privateKey"], e.message);
    }
  });
  const ccs = config.plugins.find((p) => p.plugin === "ClientCredentialService" && p.enabled);
  const wantsDefault = ccs !== undefined &&
    (ccs.config.defaultKeyPair === DEFAULT_SIGNING_KEY_PAIR ||
      ccs.config.previousKeyPairs.includes(DEFAULT_SIGNING_KEY_PAIR) ||
      config.apikeys.some((a) => a.metadata["jwt-sign-keypair"] === DEFAULT_SIGNING_KEY_PAIR));
  if (wantsDefault && !config.keypairs.some((k) => k.id === DEFAULT_SIGNING_KEY_PAIR)) {
    try {
      const stored = join(stateDir, `${DEFAULT_SIGNING_KEY_PAIR}.key.pem`);
      const generated = dryRun && !existsSync(stored)
        ? { pem: generateKeyPairPem("RS256").privateKeyPem, path: stored, created: false, unwritable: unwritable(stateDir) }
        : loadOrCreateKeyPair(stateDir, DEFAULT_SIGNING_KEY_PAIR, "RS256");
      // `check` writes nothing, but says what the start would fail on.
      if ("unwritable" in generated && generated.unwritable) {
        throw new StateDirError(
          `server.stateDir: cannot write the generated key pair ${DEFAULT_SIGNING_KEY_PAIR} there (${generated.unwritable}); set server.stateDir to a writable directory or declare the key pair under keypairs:`,
        );
      }
      const { pem, path, created } = generated;
      if (created) log("info", "keypair.generated", { id: DEFAULT_SIGNING_KEY_PAIR, path });
      pairs.set(DEFAULT_SIGNING_KEY_PAIR, importKeyPair(DEFAULT_SIGNING_KEY_PAIR, pem));
    } catch (e) {
      if (!(e instanceof StateDirError || e instanceof KeyImportError)) throw e;
      // The directory's path is a value from the file when server.stateDir sets it: not quoted.
      const message = e instanceof StateDirError ? e.message : `server.stateDir: ${e.message}`;
      at(config.server.stateDir ? ["server", "stateDir"] : [], config.server.stateDir ? message.split(stateDir).join("<server.stateDir>") : message);
    }
  }
  return pairs;
}

export function compileSnapshot(parsed: ParsedConfig, file: string, generation: number, deps: CompileDeps): Snapshot {
  const config = parsed.config;
  const problems: ConfigProblem[] = [];
  const stateDir = resolveStateDir(config, file, deps.stateDir);
  const pairs = importKeys(config, parsed, file, stateDir, problems, deps.dryRun === true);
  if (problems.length) throw new ConfigError(problems);

  const keyring = createKeyring([...pairs.values()]);
  const registry = new ApiKeyRegistry(config.apikeys);
  const trustedProxies = compileAddressMatcher(config.server.trustedProxies);
  const ccsConfig = config.plugins.find((p) => p.plugin === "ClientCredentialService" && p.enabled);

  // Signing keys: the default one and every jwt-sign-keypair target. Only these verify tokens;
  // a key pair that only serves TLS never does.
  const signingIds = new Set<string>();
  if (ccsConfig) {
    signingIds.add(ccsConfig.config.defaultKeyPair);
    // Rotation overlap: retired key pairs keep verifying (and stay in the JWKS) but never sign.
    for (const id of ccsConfig.config.previousKeyPairs) signingIds.add(id);
    for (const a of config.apikeys) if (a.metadata["jwt-sign-keypair"]) signingIds.add(a.metadata["jwt-sign-keypair"]);
  }
  const signingKeys = createKeyring([...signingIds].map((id) => pairs.get(id)).filter((k): k is KeyPair => k !== undefined));

  const sinks: Sink[] = [];
  let verifyToken: TokenVerifier | null = null;
  if (ccsConfig) {
    const ccs = createClientCredentialService(ccsConfig.config, {
      registry,
      signingKeys,
      guard: deps.guard ?? null,
      scopes: [...new Set(config.apikeys.flatMap((a) => a.metadata.scope?.trim().split(/\s+/) ?? []))].sort(),
    });
    sinks.push(ccs);
    verifyToken = ccs.verifyToken;
  }

  // One upstream client per distinct TLS setting.
  const fetchers = new Map<string, UpstreamFetch>();
  const fetchFor = (tls: UpstreamTls | undefined) => {
    const key = JSON.stringify(tls ?? null);
    let f = fetchers.get(key);
    if (!f) fetchers.set(key, f = deps.upstreamFetch(tls));
    return f;
  };

  // Calls in flight: a limit per route target and one for the process (docs/operations.md).
  const limiters = deps.dryRun ? new LimiterRegistry(new UpstreamBudget(0)) : (deps.limiters ?? processLimiters);
  limiters.budget.max = config.server.maxUpstreamRequests;
  const limiterKeys = new Set<string>();
  // Target health and breakers, kept across reloads; `check` never starts a health check.
  const health = deps.dryRun ? new HealthRegistry(false) : (deps.health ?? processHealth);
  const healthKeys = new Set<string>();

  const routes = config.routes
    .filter((r) => r.enabled)
    .map((r) => {
      const targets: ForwardTarget[] = r.backend.targets.map((t) => {
        const addr = { hostname: t.hostname, port: t.port ?? (t.tls ? 443 : 80), tls: t.tls };
        const tls = t.tls && t.tlsConfig ? { ca: t.tlsConfig.ca, insecure: t.tlsConfig.insecure } : undefined;
        const origin = targetOrigin(addr);
        const key = JSON.stringify([r.id, origin, tls ?? null]);
        limiterKeys.add(key);
        const limiter = limiters.get(key, r.backend.client.maxConnections, r.backend.client.queueSize);
        return { ...addr, weight: t.weight, fetch: fetchFor(tls), origin, hostHeader: hostHeader(addr), limiter, backup: t.backup, ...(tls ? { upstreamTls: tls } : {}) };
      });
      const stages: AccessStage[] = r.plugins
        .filter((p) => p.enabled)
        .map((p) => createApikeysStage(p.config, { registry, verifyToken, guard: deps.guard ?? null, quotas: deps.quotas ?? null }));
      const route: CompiledRoute = {
        id: r.id,
        groups: new Set(r.groups),
        stages,
        ...compileFailover(r.id, r.backend, targets, health, healthKeys),
        stripPath: r.frontend.stripPath,
        root: r.backend.root,
        timeoutMs: r.backend.timeout,
        preserveHost: r.backend.preserveHost,
        idleTimeoutMs: r.backend.client.idleTimeout,
        streamTimeoutMs: r.backend.client.callAndStreamTimeout ?? 0,
        metrics: metrics.route(r.id),
        maxBodySize: Math.min(r.frontend.maxBodySize ?? config.server.maxRequestBodySize, config.server.maxRequestBodySize),
      };
      return { route, domains: r.frontend.domains, methods: r.frontend.methods };
    });

  limiters.retainOnly(limiterKeys);
  health.retainOnly(healthKeys);
  // Every header a route sets, from every route (disabled ones too: a backend may still trust
  // what they used to set), plus the default client id header whether or not a route sets it.
  const assertedHeaders = assertedHeaderSet([CLIENT_ID_HEADER, ...config.routes.flatMap((r) => r.plugins.flatMap((p) => apikeysAssertedHeaders(p.config)))]);
  const parts: HandlerParts = { router: new Router(routes), sinks, trustedProxies, clock: deps.clock, assertedHeaders };
  const handle = createHandler(parts);
  return Object.freeze({
    generation,
    sha256: parsed.sha256,
    loadedAt: new Date(deps.clock()).toISOString(),
    file,
    config: deepFreeze(config),
    files: Object.freeze([...parsed.files]),
    keyring,
    signingKeys,
    counts: { routes: config.routes.length, apikeys: config.apikeys.length, keypairs: pairs.size },
    trustedProxies,
    assertedHeaders,
    parts,
    handle,
  });
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
