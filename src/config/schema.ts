// The single source of truth for otoroshi.yaml. TypeScript types are inferred from it and the
// JSON Schema (otoroshi.schema.json) is generated from it. Objects are strict: an unknown key is
// a load error, never a silently ignored setting (Otoroshi's W39 turned protected routes into
// open ones that way).
import { z } from "zod";
import { parseCidr } from "../net/cidr.ts";
import { parseDomain } from "../router/domain.ts";

const name = (what: string) =>
  z.string().min(1, `${what} must not be empty`).regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, `${what} may contain letters, digits, '.', '_', ':' and '-' only`);

/** Epoch milliseconds (as Otoroshi stores them) or an ISO 8601 date-time with offset. */
export const Instant = z.union([
  z.number().int().nonnegative().describe("epoch milliseconds"),
  z.iso.datetime({ offset: true }).describe("ISO 8601 date-time"),
]);

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "not a valid HTTP header name");
/** null disables that source. */
const sourceName = z.string().min(1).nullable();

// ---------------------------------------------------------------- plugins: Apikeys

const ExtractorBase = { enabled: z.boolean().default(true) };

export const ApikeysConfig = z
  .strictObject({
    extractors: z
      .strictObject({
        clientId: z
          .strictObject({
            ...ExtractorBase,
            headerName: headerName.nullable().default("x-api-key"),
            queryName: sourceName.default("x-api-key"),
            cookieName: sourceName.default("x-api-key"),
          })
          .prefault({})
          .describe("client id only (keys with allowClientIdOnly)"),
        customHeaders: z
          .strictObject({
            ...ExtractorBase,
            clientIdHeaderName: headerName.default("Otoroshi-Client-Id"),
            clientSecretHeaderName: headerName.default("Otoroshi-Client-Secret"),
          })
          .prefault({}),
        jwt: z
          .strictObject({
            ...ExtractorBase,
            headerName: headerName.nullable().default("Otoroshi-Token"),
            queryName: sourceName.default("bearer_auth"),
            cookieName: sourceName.default("access_token"),
          })
          .prefault({})
          .describe("access tokens issued by this gateway's ClientCredentialService"),
        basic: z
          .strictObject({
            ...ExtractorBase,
            headerName: headerName.nullable().default("Otoroshi-Authorization"),
            queryName: sourceName.default("basic_auth"),
            cookieName: sourceName.default("basic_auth"),
          })
          .prefault({}),
        otoBearer: z
          .strictObject({
            ...ExtractorBase,
            headerName: headerName.nullable().default("Otoroshi-Token"),
            queryName: sourceName.default("bearer_auth"),
            cookieName: sourceName.default("bearer"),
          })
          .prefault({})
          .describe("otoapk_<clientId>_<hmac> bearers"),
      })
      .prefault({}),
    /** false: requests without credentials pass (a presented credential is still checked). */
    mandatory: z.boolean().default(true),
    /** Remove the credential the key was read from before calling the backend. */
    wipeBackendRequest: z.boolean().default(true),
    /** Header telling the backend which client called; set by the gateway only. null: none. */
    clientIdHeaderName: headerName.nullable().default("Otoroshi-Authenticated-Client-Id"),
  })
  .prefault({});

const PluginBase = {
  enabled: z.boolean().default(true),
};

export const RoutePlugin = z.discriminatedUnion(
  "plugin",
  [z.strictObject({ plugin: z.literal("Apikeys"), ...PluginBase, config: ApikeysConfig })],
  { error: (iss) => (iss.code === "invalid_union" ? 'unknown route plugin (known: "Apikeys")' : undefined) },
);

// ---------------------------------------------------------------- plugins: ClientCredentialService

export const ClientCredentialConfig = z
  .strictObject({
    /** Regex on the request host (anchored, case-insensitive); "*" = any host. */
    domain: z.string().min(1).default("*"),
    /** Token lifetime in milliseconds. */
    expiration: z.number().int().min(1000).max(366 * 24 * 3600 * 1000).default(3_600_000),
    defaultKeyPair: name("defaultKeyPair").default("otoroshi-jwt-signing"),
    /** true: the endpoints answer only over https (or X-Forwarded-Proto: https from a trusted proxy). */
    secure: z.boolean().default(true),
    /** Token issuer; default: the request's scheme and host, as Otoroshi does. */
    issuer: z.url({ protocol: /^https?$/ }).optional(),
    audience: z.string().min(1).default("otoroshi"),
    /** Largest token/introspection request body, bytes. */
    maxBodySize: z.number().int().min(256).max(10 * 1024 * 1024).default(64 * 1024),
  })
  .prefault({});

export const GlobalPlugin = z.discriminatedUnion(
  "plugin",
  [z.strictObject({ plugin: z.literal("ClientCredentialService"), ...PluginBase, config: ClientCredentialConfig })],
  { error: (iss) => (iss.code === "invalid_union" ? 'unknown global plugin (known: "ClientCredentialService")' : undefined) },
);

// ---------------------------------------------------------------- routes

export const Target = z.strictObject({
  hostname: z.string().min(1).regex(/^[^\s/?#@]+$/, "a hostname or IP address, without scheme or path"),
  /** Default: 443 with tls, else 80. */
  port: z.number().int().min(1).max(65535).optional(),
  tls: z.boolean().default(false),
  weight: z.number().int().min(1).max(1000).default(1),
  tlsConfig: z
    .strictObject({
      /** Trust this CA (PEM) for this target. */
      ca: z.string().min(1).optional(),
      /** Accept any certificate. Explicit opt-in; never the default. */
      insecure: z.boolean().default(false),
    })
    .optional(),
});

const method = z
  .string()
  .regex(/^[A-Za-z]+$/, "not an HTTP method")
  .transform((m) => m.toUpperCase());

export const Route = z.strictObject({
  id: name("route id"),
  name: z.string().optional(),
  enabled: z.boolean().default(true),
  /** Groups this route belongs to (API keys authorize `group_<id>`). */
  groups: z.array(name("group")).min(1).default(["default"]),
  frontend: z.strictObject({
    /** "host" or "host/path"; "*.example.com" wildcards. */
    domains: z
      .array(
        z.string().min(1).superRefine((d, ctx) => {
          const r = parseDomain(d);
          if (!r.ok) ctx.addIssue({ code: "custom", message: r.message });
        }),
      )
      .min(1, "a route needs at least one domain"),
    /** Allowed methods; empty or absent: any. */
    methods: z.array(method).optional(),
    /** Remove the matched path prefix before calling the backend. */
    stripPath: z.boolean().default(true),
  }),
  backend: z.strictObject({
    targets: z.array(Target).min(1, "a route needs at least one target"),
    /** Path prefix prepended on the backend. */
    root: z.string().startsWith("/", "root must start with /").default("/"),
    /** Milliseconds to wait for the backend's response headers (then 504). */
    timeout: z.number().int().min(1).max(3_600_000).default(30_000),
    /** Send the client's Host header instead of the target's hostname. */
    preserveHost: z.boolean().default(false),
  }),
  plugins: z.array(RoutePlugin).default([]),
});

// ---------------------------------------------------------------- api keys, key pairs

export const PreviousSecret = z.strictObject({
  secret: z.string().min(1),
  validUntil: Instant,
});

export const ApiKey = z.strictObject({
  clientId: z
    .string()
    .min(1)
    .regex(/^[^\s:]+$/, "clientId may not contain ':' or whitespace (HTTP Basic splits on ':')"),
  /** Plain text, or "sha256:<hex>" for generated high-entropy secrets. */
  clientSecret: z.string().min(1),
  clientName: z.string().optional(),
  description: z.string().optional(),
  enabled: z.boolean().default(true),
  /** "route_<routeId>" or "group_<groupId>". */
  authorizedEntities: z.array(z.string().regex(/^(route|group)_.+$/, 'expected "route_<routeId>" or "group_<groupId>"')).default(["group_default"]),
  /** Accept the client id alone (x-api-key) for this key. */
  allowClientIdOnly: z.boolean().default(false),
  /** Only GET, HEAD and OPTIONS calls are allowed. */
  readOnly: z.boolean().default(false),
  validUntil: Instant.nullable().optional(),
  metadata: z.record(z.string(), z.string()).default({}),
  tags: z.array(z.string()).default([]),
  /** Calls per second (whole UTC seconds). */
  throttlingQuota: z.number().int().positive().optional(),
  dailyQuota: z.number().int().positive().optional(),
  monthlyQuota: z.number().int().positive().optional(),
  previousSecrets: z.array(PreviousSecret).default([]),
});

export const KeyPairConfig = z.strictObject({
  id: name("key pair id"),
  /** PKCS#8 PEM; inline, ${file:path} or ${env:NAME}. */
  privateKey: z.string().min(1),
  /** PEM certificate chain (leaf first) to serve TLS with this key. */
  certificate: z.string().min(1).optional(),
  description: z.string().optional(),
});

// ---------------------------------------------------------------- server

export const Server = z
  .strictObject({
    port: z.number().int().min(0).max(65535).default(8080),
    host: z.string().min(1).default("0.0.0.0"),
    https: z
      .strictObject({
        port: z.number().int().min(0).max(65535).default(8443),
        /** Key pairs (with a certificate) served by SNI; the first is the default. */
        keyPairs: z.array(name("key pair id")).min(1),
      })
      .optional(),
    /** Addresses or CIDRs whose X-Forwarded-* headers are trusted. */
    trustedProxies: z
      .array(
        z.string().min(1).superRefine((t, ctx) => {
          const r = parseCidr(t);
          if (!r.ok) ctx.addIssue({ code: "custom", message: r.message });
        }),
      )
      .default([]),
    /** Where generated key pairs and counters are kept. Default: the config file's directory. */
    stateDir: z.string().min(1).optional(),
    /** Seconds a keep-alive connection may stay idle. */
    idleTimeout: z.number().int().min(1).max(255).default(30),
    /** Largest request body accepted on routes, bytes. */
    maxRequestBodySize: z.number().int().min(1024).default(1024 * 1024 * 1024),
    /** Where quota counters live: absent = in memory, persisted to stateDir; "redis://host:port[/db]" = shared. */
    store: z.string().regex(/^rediss?:\/\/.+/, 'expected "redis://host:port" (or "rediss://")').optional(),
    /** When the shared store is unreachable: "open" keeps serving without quotas, "closed" answers 503. */
    storeUnavailable: z.enum(["open", "closed"]).default("open"),
    /** Milliseconds between writes of in-memory quota counters to stateDir. */
    countersFlushInterval: z.number().int().min(100).max(3_600_000).default(5_000),
    /** Failed secret checks allowed per client id and source address in a sliding window. */
    failedAuth: z
      .strictObject({
        maxFailures: z.number().int().min(1).default(10),
        windowSeconds: z.number().int().min(1).max(86_400).default(60),
      })
      .prefault({}),
  })
  .prefault({});

export const Config = z.strictObject({
  server: Server,
  plugins: z.array(GlobalPlugin).default([]),
  routes: z.array(Route).default([]),
  apikeys: z.array(ApiKey).default([]),
  keypairs: z.array(KeyPairConfig).default([]),
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

export const DEFAULT_SIGNING_KEY_PAIR = "otoroshi-jwt-signing";
