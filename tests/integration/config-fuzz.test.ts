// Config fuzzing (issue 8, item 7): no config value may ever cause a 5xx of the gateway's own.
//
// fast-check generates whole configs (routes, targets, domains, plugin settings, API keys with
// plain, hashed and malformed hashed secrets, quotas, validity dates, the token service), keeps
// those that load (the others must be refused with ConfigError, never another exception), builds
// the gateway from each and sends it a set of requests: the routes with no, good and bad
// credentials, the token, introspection, JWKS and metadata endpoints. Properties:
//   - loading throws nothing but ConfigError;
//   - every answer is < 500, or 502/503/504 (a target that is down, slow or busy);
//   - no *.crashed / unhandled log line.
// Targets are the real echo backend, a closed port and unreachable loopback addresses.
//
// Bounded: numRuns and a time limit. Reproduce with FUZZ_SEED=<seed> (printed on failure).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createServer } from "node:net";
import { stringify } from "yaml";
import { ConfigError } from "../../src/errors.ts";
import { generateKeyPairPem } from "../../src/keys/generate.ts";
import { addLogTap } from "../../src/log.ts";
import { otoBearerFor } from "../../src/plugins/apikeys/registry.ts";
import { hashSecret } from "../../src/plugins/secrets.ts";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { basic, buildGateway } from "../helpers/gateway.ts";

const RUNS = 300;
const TIME_LIMIT_MS = 40_000;
const PER_REQUEST_MS = 5_000;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const NOW = Date.parse("2026-06-01T00:00:00Z");
const OAUTH = "/.well-known/otoroshi/oauth";

const signing = generateKeyPairPem("ES256").privateKeyPem;
let be: EchoBackend;
let closedPort = 0;
const crashes: string[] = [];
let removeTap = () => {};

beforeAll(async () => {
  be = await startEchoBackend();
  // A port nothing listens on: bound, then closed.
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  closedPort = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  removeTap = addLogTap(
    (line) => {
      if (/crashed|unhandled/.test((JSON.parse(line) as { event: string }).event)) crashes.push(line);
    },
    { level: "error" },
  );
});
afterAll(async () => {
  removeTap();
  await be?.stop();
});

// ------------------------------------------------------------------------------ generators

const text = (maxLength = 12) => fc.oneof(fc.string({ minLength: 1, maxLength }), fc.string({ unit: "grapheme", minLength: 1, maxLength }), fc.stringMatching(/^[a-z0-9._:-]{1,12}$/));
const ident = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,10}$/);
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9_-]{0,6}[a-z0-9])?$/);
const host = fc.tuple(label, fc.constantFrom("test", "example", "xn--bcher-kva.test", "a")).map(([a, b]) => `${a}.${b}`);
const pathSeg = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z0-9._~!$&'()*+,=@-]{1,8}$/) },
  { weight: 1, arbitrary: fc.constantFrom("..", ".", "%2F", "%zz", "%41", "a b", "é", "x?y", "x#y", ";", "%") },
);
const domainPath = fc.array(pathSeg, { maxLength: 3 }).map((segs) => (segs.length ? `/${segs.join("/")}` : ""));
const domain = fc.tuple(fc.constantFrom("", "*."), host, domainPath, fc.constantFrom("", "/", ".")).map((
  [w, h, p, end],
) => (end === "." && !p ? `${w}${h}.` : `${w}${h}${p}${end === "/" ? "/" : ""}`));

/** The secret as the client knows it, and as the config stores it. */
interface Secret {
  plain: string;
  stored: string;
}
const secret: fc.Arbitrary<Secret> = fc.oneof(
  { weight: 4, arbitrary: text(24).map((s) => ({ plain: s, stored: s })) },
  { weight: 3, arbitrary: text(24).map((s) => ({ plain: s, stored: hashSecret(s) })) },
  { weight: 1, arbitrary: text(24).map((s) => ({ plain: s, stored: hashSecret(s).toUpperCase().replace("SHA256:", "sha256:") })) },
  // Malformed hashes: validation must refuse them (never a 500 at request time).
  { weight: 1, arbitrary: fc.tuple(text(8), fc.integer({ min: 0, max: 70 })).map(([s, n]) => ({ plain: s, stored: `sha256:${hashSecret(s).slice(7).padEnd(70, "f").slice(0, n)}` })) },
  { weight: 1, arbitrary: fc.constantFrom({ plain: "x", stored: "sha256:" }, { plain: "x", stored: `sha256:${"g".repeat(64)}` }, { plain: "sha256:", stored: "sha256:" }) },
);

const instant = fc.oneof(fc.constantFrom(NOW - 1000, NOW + 3_600_000, 0, Number.MAX_SAFE_INTEGER), fc.constantFrom("2026-06-01T00:00:00Z", "2027-01-01T00:00:00+02:00", "2020-01-01T00:00:00Z"));
const quota = fc.option(fc.oneof(fc.integer({ min: 1, max: 3 }), fc.constantFrom(1_000_000, Number.MAX_SAFE_INTEGER)), { nil: undefined });
const headerName = fc.oneof(
  fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/),
  fc.constantFrom("Host", "Content-Length", "Transfer-Encoding", "Connection", "Authorization", "Cookie", "X-Forwarded-For", "Otoroshi-Client-Id"),
);
const source = fc.option(fc.stringMatching(/^[A-Za-z0-9_.-]{1,10}$/), { nil: null });

const extractors = fc.record(
  {
    clientId: fc.record({ enabled: fc.boolean(), headerName: fc.option(headerName, { nil: null }), queryName: source, cookieName: source }, { requiredKeys: [] }),
    customHeaders: fc.record({ enabled: fc.boolean(), clientIdHeaderName: headerName, clientSecretHeaderName: headerName }, { requiredKeys: [] }),
    jwt: fc.record({ enabled: fc.boolean(), headerName: fc.option(headerName, { nil: null }), queryName: source, cookieName: source }, { requiredKeys: [] }),
    basic: fc.record({ enabled: fc.boolean(), headerName: fc.option(headerName, { nil: null }), queryName: source, cookieName: source }, { requiredKeys: [] }),
    otoBearer: fc.record({ enabled: fc.boolean(), headerName: fc.option(headerName, { nil: null }), queryName: source, cookieName: source }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);
const apikeysPlugin = fc.record(
  {
    plugin: fc.constant("Apikeys"),
    enabled: fc.boolean(),
    config: fc.record({ extractors, mandatory: fc.boolean(), wipeBackendRequest: fc.boolean(), clientIdHeaderName: fc.option(headerName, { nil: null }) }, { requiredKeys: [] }),
  },
  { requiredKeys: ["plugin"] },
);

const target = fc.record(
  {
    hostname: fc.constantFrom("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"),
    port: fc.constantFrom("echo", "closed", 1, 65535) as fc.Arbitrary<"echo" | "closed" | number>,
    tls: fc.boolean(),
    weight: fc.integer({ min: 1, max: 1000 }),
    tlsConfig: fc.record({ insecure: fc.boolean() }, { requiredKeys: [] }),
  },
  { requiredKeys: ["hostname", "port"] },
);

const route = fc.record(
  {
    // Mostly r<index> (see toYaml), so that API keys can name the routes.
    id: fc.option(ident, { nil: null, freq: 5 }),
    enabled: fc.boolean(),
    groups: fc.array(ident, { minLength: 1, maxLength: 2 }),
    frontend: fc.record(
      {
        domains: fc.array(domain, { minLength: 1, maxLength: 2 }),
        methods: fc.array(fc.constantFrom("GET", "post", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW"), { maxLength: 3 }),
        stripPath: fc.boolean(),
        maxBodySize: fc.integer({ min: 0, max: 64 }),
      },
      { requiredKeys: ["domains"] },
    ),
    backend: fc.record(
      {
        targets: fc.array(target, { minLength: 1, maxLength: 2 }),
        root: fc.oneof(fc.constant("/"), domainPath.map((p) => p || "/"), fc.constantFrom("/a b", "/x?y=1", "/#frag", "/%", "/é", "//double")),
        timeout: fc.integer({ min: 1, max: 2000 }),
        preserveHost: fc.boolean(),
      },
      { requiredKeys: ["targets"] },
    ),
    plugins: fc.array(apikeysPlugin, { maxLength: 2 }),
  },
  { requiredKeys: ["id", "frontend", "backend"] },
);

const apikey = fc.record(
  {
    clientId: fc.oneof({ weight: 4, arbitrary: ident.map((i) => i.replaceAll(":", "_")) }, { weight: 1, arbitrary: fc.stringMatching(/^[^\s:]{1,10}$/) }),
    secret,
    enabled: fc.boolean(),
    authorizedEntities: fc.array(fc.oneof({ weight: 9, arbitrary: fc.constantFrom("group_default", "route_r0", "route_r1") }, { weight: 1, arbitrary: ident.map((i) => `route_${i}`) }), {
      maxLength: 2,
    }),
    allowClientIdOnly: fc.boolean(),
    readOnly: fc.boolean(),
    validUntil: fc.option(instant, { nil: undefined }),
    metadata: fc.record({ scope: fc.constantFrom("read", "read write", "a:b"), "jwt-sign-keypair": fc.constantFrom("fuzz-sig", "fuzz-sig", "fuzz-sig", "otoroshi-jwt-signing") }, { requiredKeys: [] }),
    throttlingQuota: quota,
    dailyQuota: quota,
    monthlyQuota: quota,
    previousSecrets: fc.array(fc.record({ secret: secret.filter((s) => !s.stored.startsWith("sha256:") || /^sha256:[0-9a-fA-F]{64}$/.test(s.stored)), validUntil: instant }), { maxLength: 1 }),
  },
  { requiredKeys: ["clientId", "secret"] },
);

const ccs = fc.record(
  {
    plugin: fc.constant("ClientCredentialService"),
    enabled: fc.boolean(),
    config: fc.record(
      {
        domain: fc.constantFrom("*", "oauth.test", "oauth\\.test", "(oauth|auth)\\.test", ".*", "a{2,}", "[", "(?:oauth)+\\.test$", "oauth.test|.*"),
        expiration: fc.constantFrom(1000, 3_600_000, 366 * 24 * 3600 * 1000),
        defaultKeyPair: fc.constantFrom("fuzz-sig", "fuzz-sig", "otoroshi-jwt-signing", "missing"),
        secure: fc.boolean(),
        issuer: fc.constantFrom("https://oauth.test", "http://x", "https://é.test/path?q"),
        audience: text(10),
        maxBodySize: fc.constantFrom(256, 1024, 65536),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: ["plugin"] },
);

const config = fc.record({ plugins: fc.array(ccs, { maxLength: 1 }), routes: fc.array(route, { minLength: 1, maxLength: 3 }), apikeys: fc.array(apikey, { maxLength: 3 }) });
type Generated = typeof config extends fc.Arbitrary<infer T> ? T : never;

function toYaml(c: Generated): string {
  const doc = {
    server: { trustedProxies: ["10.0.0.0/8"] },
    plugins: c.plugins,
    routes: c.routes.map((r, i) => ({
      ...r,
      id: r.id ?? `r${i}`,
      backend: { ...r.backend, targets: r.backend.targets.map((t) => ({ ...t, port: t.port === "echo" ? be.port : t.port === "closed" ? closedPort : t.port })) },
    })),
    apikeys: c.apikeys.map(({ secret: s, previousSecrets, ...k }) => ({
      ...k,
      clientSecret: s.stored,
      previousSecrets: (previousSecrets ?? []).map((p) => ({ secret: p.secret.stored, validUntil: p.validUntil })),
    })),
    keypairs: [{ id: "fuzz-sig", privateKey: signing }],
  };
  return stringify(doc, { lineWidth: 0 });
}

// ------------------------------------------------------------------------------ requests

/** The host and path a route's domain answers on ("*.a.test/x" → "w.a.test", "/x/sub"). */
function addressOf(d: string): { host: string; path: string } {
  const slash = d.indexOf("/");
  const h = (slash < 0 ? d : d.slice(0, slash)).replace(/^\*\./, "w.").replace(/\.$/, "");
  return { host: h, path: `${slash < 0 ? "" : d.slice(slash)}/sub` };
}

function requests(c: Generated): Request[] {
  const all: Request[] = [];
  // A header value a client cannot send (not ISO-8859-1) is not sent.
  const out = {
    push(input: string, init?: RequestInit) {
      try {
        all.push(new Request(input, init));
      } catch {
        // A generated URL that is not a valid Request: skipped, it tests nothing of ours.
      }
    },
  };
  const url = (host: string, path: string) => {
    try {
      return new URL(`http://${host}${path.startsWith("/") ? path : `/${path}`}?q=1`).href;
    } catch {
      return `http://${host}/`;
    }
  };
  for (const r of c.routes) {
    const { host, path } = addressOf(r.frontend.domains[0]!);
    const u = url(host, path);
    const method = r.frontend.methods?.[0]?.toUpperCase() ?? "GET";
    out.push(u, { method: method === "BREW" ? "GET" : method });
    out.push(u, { method: "POST", body: "x".repeat(100) });
    for (const k of c.apikeys) {
      out.push(u, { headers: { authorization: basic(k.clientId, k.secret.plain) } });
      out.push(u, { headers: { authorization: basic(k.clientId, "wrong") } });
      out.push(u, { headers: { "x-api-key": k.clientId, "otoroshi-client-id": k.clientId, "otoroshi-client-secret": k.secret.plain } });
      out.push(u, { headers: { authorization: `Bearer ${otoBearerFor(k.clientId, k.secret.plain)}` } });
    }
    out.push(u, { headers: { authorization: "Bearer a.b.c", cookie: "access_token=x; bearer=otoapk_a_00" } });
  }
  for (const h of ["oauth.test", "auth.test", "aa.test"]) {
    for (const k of c.apikeys) {
      out.push(`http://${h}${OAUTH}/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: "client_credentials", client_id: k.clientId, client_secret: k.secret.plain, scope: "read" }),
      });
      out.push(`http://${h}${OAUTH}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(k.clientId, k.secret.plain) },
        body: "grant_type=client_credentials",
      });
    }
    out.push(`http://${h}${OAUTH}/jwks.json`);
    out.push(`http://${h}/.well-known/oauth-authorization-server`);
    out.push(`http://${h}${OAUTH}/token/introspect`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic("a", "b") }, body: "token=a.b.c" });
  }
  return all;
}

const withTimeout = <T>(p: Promise<T>, what: string) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${PER_REQUEST_MS} ms: ${what}`)), PER_REQUEST_MS).unref?.())]);

describe("config fuzzing", () => {
  test("configs that load never make the gateway answer 5xx (other than 502/503/504)", async () => {
    let loaded = 0;
    let refused = 0;
    let sent = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(config, fc.boolean(), async (c, secure) => {
        const yaml = toYaml(c);
        let gw: ReturnType<typeof buildGateway>;
        try {
          gw = buildGateway(yaml, { now: NOW });
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e; // a load that crashes would be a start that crashes
          refused++;
          if (process.env.FUZZ_DEBUG) { for (const p of e.problems) console.error("REFUSED", p.path.replace(/\[\d+\]/g, "[]"), p.message.slice(0, 60)); }
          return;
        }
        loaded++;
        try {
          for (const req of requests(c)) {
            sent++;
            // A token the gateway issued, presented back on the routes and to introspection.
            const res = await withTimeout(gw.call(req, undefined, { secure }), `${req.method} ${req.url}`);
            const body = await res.text();
            statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
            if (res.status >= 500 && ![502, 503, 504].includes(res.status)) {
              throw new Error(`${res.status} for ${req.method} ${req.url}: ${body.slice(0, 200)}\n${yaml}`);
            }
            if (res.status === 200 && req.url.endsWith("/token")) {
              const token = (JSON.parse(body) as { access_token?: string }).access_token;
              for (const r of c.routes.slice(0, 1)) {
                const { host, path } = addressOf(r.frontend.domains[0]!);
                const again = await withTimeout(gw.call(`http://${host}${path.startsWith("/") ? path : `/${path}`}`, { headers: { authorization: `Bearer ${token}` } }, { secure }), "bearer");
                await again.arrayBuffer();
                expect(again.status === 502 || again.status === 503 || again.status === 504 || again.status < 500).toBe(true);
              }
            }
          }
        } finally {
          gw.close();
        }
      }),
      { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, seed: SEED, endOnFailure: true },
    );
    if (process.env.FUZZ_DEBUG) console.error({ loaded, refused, sent, statuses });
    expect(crashes).toEqual([]);
    // Both outcomes are exercised: some configs load (and get traffic), some are refused.
    expect(loaded).toBeGreaterThan(10);
    expect(refused).toBeGreaterThan(0);
    expect(sent).toBeGreaterThan(200);
    // Calls got through to the backend and tokens were issued, not only refusals.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(10);
  }, 90_000);
});
