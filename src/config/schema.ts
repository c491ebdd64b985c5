// The single source of truth for otoroshi.yaml. TypeScript types are inferred from it and the
// JSON Schema (otoroshi.schema.json) is generated from it. Objects are strict: an unknown key is
// a load error, never a silently ignored setting (Otoroshi's W39 turned protected routes into
// open ones that way).
import { z } from "zod";
import { FailoverClientFields, HealthCheck, LoadBalancing } from "./backend-schema.ts";
import { Acme } from "./acme-schema.ts";
import { ApikeysConfig } from "./apikeys-schema.ts";
import { backendRoot, BYTES, CALLS, cidr, domain, hostname, MILLISECONDS, quantity, redisUrl, SECONDS, storedSecret } from "./fields.ts";
import { AccessLog, Monitoring } from "./monitoring-schema.ts";

const name = (what: string) => z.string().min(1, `${what} must not be empty`).regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, `${what} may contain letters, digits, '.', '_', ':' and '-' only`);

/** Epoch milliseconds (as Otoroshi stores them) or an ISO 8601 date-time with offset. */
export const Instant = z.union([
  z.number().int().nonnegative().describe("epoch milliseconds"),
  z.iso.datetime({ offset: true }).describe("ISO 8601 date-time"),
]);

const PluginBase = {
  enabled: z.boolean().default(true).describe("false: the plugin is ignored"),
};

export const RoutePlugin = z.discriminatedUnion(
  "plugin",
  [z.strictObject({ plugin: z.literal("Apikeys").describe("Only callers with a valid API key pass"), ...PluginBase, config: ApikeysConfig.describe("Apikeys plugin settings") })],
  { error: (iss) => (iss.code === "invalid_union" ? 'unknown route plugin (known: "Apikeys")' : undefined) },
);

// ---------------------------------------------------------------- plugins: ClientCredentialService

export const ClientCredentialConfig = z
  .strictObject({
    domain: z.string().min(1).default("*").describe('Regex on the request host (anchored, case-insensitive); "*" = any host.'),
    expiration: quantity(MILLISECONDS, 1000, 366 * 24 * 3600 * 1000).default(3_600_000).describe("Token lifetime in milliseconds."),
    defaultKeyPair: name("defaultKeyPair").default("otoroshi-jwt-signing").describe(
      "Key pair signing tokens of keys without a jwt-sign-keypair; otoroshi-jwt-signing is generated on first start when not declared",
    ),
    secure: z.boolean().default(true).describe("true: the endpoints answer only over https (or X-Forwarded-Proto: https from a trusted proxy)."),
    issuer: z.url({ protocol: /^https?$/ }).optional().describe("Token issuer; default: the request's scheme and host, as Otoroshi does."),
    previousKeyPairs: z
      .array(name("key pair id"))
      .default([])
      .describe("Key pairs that no longer sign but still verify tokens and stay in the JWKS: keep the old defaultKeyPair here after a rotation until its tokens have expired"),
    audience: z.string().min(1).default("otoroshi").describe("aud claim of issued tokens; tokens presented on routes must carry it"),
    maxBodySize: quantity(BYTES, 256, 10 * 1024 * 1024).default(64 * 1024).describe("Largest token/introspection request body, bytes."),
  })
  .prefault({});

export const GlobalPlugin = z.discriminatedUnion(
  "plugin",
  [z.strictObject({
    plugin: z.literal("ClientCredentialService").describe("OAuth2 client credentials: token, introspection, JWKS and metadata endpoints"),
    ...PluginBase,
    config: ClientCredentialConfig.describe("ClientCredentialService settings"),
  })],
  { error: (iss) => (iss.code === "invalid_union" ? 'unknown global plugin (known: "ClientCredentialService")' : undefined) },
);

// ---------------------------------------------------------------- routes

export const Target = z.strictObject({
  hostname: hostname.describe("Host name or IP address (IPv6 with or without brackets); the port goes in `port`"),
  port: z.number().int().min(1).max(65535).optional().describe("Default: 443 with tls, else 80."),
  tls: z.boolean().default(false).describe("Call the target over https (certificate verified by default)"),
  weight: z.number().int().min(1).max(1000).default(1).describe("Relative share of calls (smooth weighted round-robin)"),
  backup: z.boolean().default(false).describe("Called only when every non-backup target is unhealthy or has failed this call"),
  tlsConfig: z
    .strictObject({
      ca: z.string().min(1).optional().describe("Trust this CA (PEM) for this target."),
      insecure: z.boolean().default(false).describe("Accept any certificate. Explicit opt-in; never the default."),
    })
    .optional()
    .describe("TLS trust for this target"),
});

const method = z
  .string()
  .regex(/^[A-Za-z]+$/, "not an HTTP method")
  .transform((m) => m.toUpperCase());

export const Route = z.strictObject({
  id: name("route id").describe("Unique route id; API keys authorize it as route_<id>"),
  name: z.string().optional().describe("Human-readable name"),
  enabled: z.boolean().default(true).describe("false: the route never matches"),
  groups: z.array(name("group")).min(1).default(["default"]).describe("Groups this route belongs to (API keys authorize `group_<id>`)."),
  frontend: z.strictObject({
    domains: z
      .array(domain)
      .min(1, "a route needs at least one domain")
      .describe(
        '"host" or "host/path" as in Otoroshi; "*.example.com" matches any subdomain; "*" matches any host, after every more specific domain. Hosts match case-insensitively, whatever the port; paths match whole segments',
      ),
    methods: z.array(method).optional().describe("Allowed methods; empty or absent: any."),
    stripPath: z.boolean().default(true).describe("Remove the matched path prefix before calling the backend."),
    maxBodySize: quantity(BYTES, 0).optional().describe("Largest request body on this route, bytes (413 beyond). Default: server.maxRequestBodySize"),
  }).describe("What the route answers: domains, methods"),
  backend: z.strictObject({
    targets: z
      .array(Target)
      .min(1, "a route needs at least one target")
      .refine((ts) => ts.length === 0 || ts.some((t) => !t.backup), "every target is a backup: at least one must not be"),
    root: backendRoot.default("/").describe("Path prefix prepended on the backend (in its canonical form: dot segments removed, slashes merged)."),
    timeout: quantity(MILLISECONDS, 1, 3_600_000).default(30_000).describe("Milliseconds to wait for the backend's response headers (then 504)."),
    preserveHost: z.boolean().default(false).describe("Send the client's Host header instead of the target's hostname."),
    loadBalancing: LoadBalancing,
    healthCheck: HealthCheck,
    client: z
      .strictObject({
        maxConnections: quantity(CALLS, 1, 65_535)
          .default(256)
          .describe("Calls in flight to each target of this route at once (until the response body ends). Beyond: the call waits in the queue"),
        queueSize: quantity(CALLS, 0, 65_535)
          .default(256)
          .describe("Calls per target that may wait for a free connection, each at most `timeout` ms (then 503). Beyond: 503 ERR_UPSTREAM_BUSY at once, with Retry-After"),
        ...FailoverClientFields,
        idleTimeout: quantity(MILLISECONDS, 1, 86_400_000)
          .default(60_000)
          .describe("Milliseconds a WebSocket pair may stay silent (then both sides close with 1001), and a response body may wait for its next chunk (then the body is cut)"),
        callAndStreamTimeout: quantity(MILLISECONDS, 1, 86_400_000)
          .optional()
          .describe("Milliseconds for a whole call, response body included (then the body is cut). Default: none (Otoroshi: 120000)"),
      })
      .prefault({})
      .describe("How the gateway calls this route's targets (as Otoroshi's backend.client)"),
  }).describe("Where the route sends calls"),
  plugins: z.array(RoutePlugin).default([]).describe("Route plugins, run in order"),
});

// ---------------------------------------------------------------- api keys, key pairs

export const PreviousSecret = z.strictObject({
  secret: storedSecret.describe("Plain text or sha256:<64 hex digits>"),
  validUntil: Instant.describe("When this secret stops working (epoch ms or ISO 8601)"),
});

export const ApiKey = z.strictObject({
  clientId: z
    .string()
    .min(1)
    .regex(/^[^\s:]+$/, "clientId may not contain ':' or whitespace (HTTP Basic splits on ':')")
    .describe("The API key's id; also the OAuth2 client_id"),
  clientSecret: storedSecret.describe('Plain text, or "sha256:<hex>" for generated high-entropy secrets.'),
  clientName: z.string().optional().describe("Defaults to clientId"),
  description: z.string().optional().describe("Free text"),
  enabled: z.boolean().default(true).describe("false: every call and token of this key is refused"),
  authorizedEntities: z.array(z.string().regex(/^(route|group)_.+$/, 'expected "route_<routeId>" or "group_<groupId>"')).default(["group_default"]).describe('"route_<routeId>" or "group_<groupId>".'),
  allowClientIdOnly: z.boolean().default(false).describe("Accept the client id alone (x-api-key) for this key."),
  readOnly: z.boolean().default(false).describe("Only GET, HEAD and OPTIONS calls are allowed."),
  validUntil: Instant.nullable().optional().describe("The key is refused from then on (epoch ms or ISO 8601)"),
  metadata: z.record(z.string(), z.string()).default({}).describe(
    'String map; "jwt-sign-keypair" names the key pair signing this key\'s tokens, "scope" lists its allowed OAuth scopes (space separated)',
  ),
  tags: z.array(z.string()).default([]).describe("Free-form labels"),
  throttlingQuota: quantity(CALLS, 1).optional().describe("Calls per second (whole UTC seconds)."),
  dailyQuota: quantity(CALLS, 1).optional().describe("Calls per UTC day."),
  monthlyQuota: quantity(CALLS, 1).optional().describe("Calls per UTC month."),
  previousSecrets: z.array(PreviousSecret).default([]).describe("Older secrets still accepted until their validUntil (rotation without downtime)"),
});

export const KeyPairConfig = z.strictObject({
  id: name("key pair id").describe("Key pair id; also the JWT kid"),
  privateKey: z.string().min(1).describe("PKCS#8 PEM; inline, ${file:path} or ${env:NAME}."),
  certificate: z.string().min(1).optional().describe("PEM certificate chain (leaf first) to serve TLS with this key."),
  description: z.string().optional(),
});

// ---------------------------------------------------------------- server

/** server.maxConfigSize's default, 16 MiB: far above a config of 10,000 API keys (~2 MiB). */
export const DEFAULT_MAX_CONFIG_SIZE = 16 * 1024 * 1024;
export const MAX_CONFIG_SIZE_LIMIT = 256 * 1024 * 1024;

export const Server = z
  .strictObject({
    port: z.number().int().min(0).max(65535).default(8080).describe("HTTP port (0: any free port)"),
    host: hostname.default("0.0.0.0").describe("Address the listeners bind to"),
    https: z
      .strictObject({
        port: z.number().int().min(0).max(65535).default(8443).describe("HTTPS port"),
        keyPairs: z.array(name("key pair id")).default([]).describe("Key pairs (with a certificate) served by SNI; the first is the default. They win over ACME certificates for their names."),
        acme: Acme.optional().describe("Certificates obtained and renewed with ACME (RFC 8555) over HTTP-01, kept in stateDir"),
      })
      .superRefine((h, ctx) => {
        if (h.keyPairs.length === 0 && !h.acme?.enabled) ctx.addIssue({ code: "custom", path: ["keyPairs"], message: "the HTTPS listener needs certificates: list keyPairs, or enable acme" });
      })
      .optional()
      .describe("HTTPS listener; certificates chosen by SNI"),
    trustedProxies: z
      .array(cidr)
      .default([])
      .describe("Addresses or CIDRs (IPv4/IPv6) of proxies in front of the gateway whose X-Forwarded-* headers are trusted"),
    stateDir: z.string().min(1).optional().describe("Where generated key pairs, counters and ACME accounts and certificates are kept. Default: the config file's directory."),
    idleTimeout: quantity(SECONDS, 1, 255).default(30).describe("Seconds a keep-alive connection may stay idle."),
    maxRequestBodySize: quantity(BYTES, 1024).default(1024 * 1024 * 1024).describe("Largest request body accepted on routes, bytes."),
    store: redisUrl.optional().describe('Where quota counters live: absent = in memory, persisted to stateDir; "redis://host:port[/db]" = shared.'),
    storeUnavailable: z.enum(["open", "closed"]).default("open").describe('When the shared store is unreachable: "open" keeps serving without quotas, "closed" answers 503.'),
    countersFlushInterval: quantity(MILLISECONDS, 100, 3_600_000).default(5_000).describe("Milliseconds between writes of in-memory quota counters to stateDir."),
    maxConfigSize: quantity(BYTES, 1024, MAX_CONFIG_SIZE_LIMIT)
      .default(DEFAULT_MAX_CONFIG_SIZE)
      .describe(
        "Largest config file, bytes; a larger one is refused before it is parsed. Reloads use the running value; at start, a value above the default must be written in block style (`server:` then `  maxConfigSize: N`) so it is found before the parse.",
      ),
    maxUpstreamRequests: quantity(CALLS, 1, 65_535)
      .default(4096)
      .describe("Calls to backends in flight at once over all routes; beyond: 503 ERR_UPSTREAM_BUSY at once. Keep it above any one route's maxConnections × targets"),
    failedAuth: z
      .strictObject({
        maxFailures: z.number().int().min(1).default(10).describe("Failures allowed in the window"),
        windowSeconds: quantity(SECONDS, 1, 86_400).default(60).describe("Sliding window length in seconds"),
      })
      .prefault({})
      .describe("Failed secret checks allowed per client id and source address before further attempts get 429"),
    monitoring: Monitoring,
    accessLog: AccessLog,
    shutdownDelay: quantity(MILLISECONDS, 0, 600_000)
      .default(0)
      .describe(
        "Milliseconds between SIGTERM and closing the listeners: /.well-known/otoroshi/monitoring/ready answers 503 at once while requests are still served, so a load balancer stops sending new ones; then in-flight requests drain",
      ),
  })
  .prefault({})
  .describe("Listeners and process-wide settings; read at start (a change needs a restart)");

export const Config = z.strictObject({
  server: Server,
  plugins: z.array(GlobalPlugin).default([]).describe("Global plugins"),
  routes: z.array(Route).default([]).describe("Routes: frontend (domains) → backend (targets), with plugins"),
  apikeys: z.array(ApiKey).default([]).describe("API keys; each is also an OAuth2 client"),
  keypairs: z.array(KeyPairConfig).default([]).describe("Signing keys (JWT) and TLS certificates"),
});

export type Config = z.output<typeof Config>;
export type ConfigInput = z.input<typeof Config>;
export type RouteConfig = z.output<typeof Route>;
export type TargetConfig = z.output<typeof Target>;
export type ApiKeyConfig = z.output<typeof ApiKey>;
export type ApikeysPluginConfig = z.output<typeof ApikeysConfig>;
export type ClientCredentialServiceConfig = z.output<typeof ClientCredentialConfig>;
export type KeyPairEntry = z.output<typeof KeyPairConfig>;
export type ServerConfig = z.output<typeof Server>;
export type AcmeConfig = z.output<typeof Acme>;

export const DEFAULT_SIGNING_KEY_PAIR = "otoroshi-jwt-signing";
