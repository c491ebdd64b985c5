// Property-based fuzzing of every surface a client can reach without credentials: the token,
// introspection, JWKS and metadata endpoints, the credential extractors of a protected route,
// and the gateway as a whole (methods, paths, query strings, hosts, headers, cookies, bodies).
// Requests go through the whole in-process gateway to a real echo backend.
//
// Properties: never a 5xx, never a crash (no *.crashed / unhandled_error log line), always an
// answer within a per-request timeout, error bodies in the shape of the surface that answered
// (RFC 6749 §5.2 on the OAuth endpoints, {"Otoroshi-Error"} elsewhere), and a protected route or
// the token endpoint says yes only to a request that carried a valid credential.
//
// Bounded: numRuns per property and a time limit per property. Reproduce a failure with the
// seed and path fast-check prints (FUZZ_SEED=<seed> bun test tests/integration/fuzz.test.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { generateKeyPairPem } from "../../src/keys/generate.ts";
import { addLogTap } from "../../src/log.ts";
import { otoBearerFor } from "../../src/plugins/apikeys/registry.ts";
import { hashSecret } from "../../src/plugins/secrets.ts";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { buildGateway, type TestGateway } from "../helpers/gateway.ts";

const RUNS = 1500;
const TIME_LIMIT_MS = 10_000;
const PER_REQUEST_MS = 5_000;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const NOW = Date.parse("2026-06-01T00:00:00Z");

const OAUTH = "/.well-known/otoroshi/oauth";
const TOKEN = `${OAUTH}/token`;
const INTROSPECT = `${OAUTH}/token/introspect`;
const JWKS = `${OAUTH}/jwks.json`;
const METADATA = "/.well-known/oauth-authorization-server";
const STATUS = "/.well-known/otoroshi/status";

// Three clients: one with a plain secret, one with a hashed secret, one allowed by id alone.
const APP = { id: "fuzz-app", secret: "fuzz-app-secret-0123" };
const HASHED = { id: "fuzz-hashed", secret: "fuzz-hashed-secret-4567" };
const ID_ONLY = "fuzz-idonly";
const CLIENTS = [APP, HASHED];

const indent = (pem: string) => pem.trim().split("\n").join("\n      ");
const signing = generateKeyPairPem("ES256").privateKeyPem;

const yaml = (port: number) => `
plugins:
  - plugin: ClientCredentialService
    config: { domain: "*", secure: false, defaultKeyPair: fuzz-sig }
routes:
  - id: protected
    frontend: { domains: [api.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }], root: /echo }
    plugins:
      - plugin: Apikeys
        config:
          extractors:
            clientId: { enabled: true }
            customHeaders: { enabled: true }
            jwt: { enabled: true }
            basic: { enabled: true }
            otoBearer: { enabled: true }
  - id: open
    frontend: { domains: [open.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }], root: /echo }
apikeys:
  - { clientId: ${APP.id}, clientSecret: ${APP.secret}, metadata: { scope: "read write" } }
  - { clientId: ${HASHED.id}, clientSecret: "${hashSecret(HASHED.secret)}" }
  - { clientId: ${ID_ONLY}, clientSecret: fuzz-idonly-secret-89, allowClientIdOnly: true }
  - { clientId: fuzz-disabled, clientSecret: fuzz-disabled-secret, enabled: false }
keypairs:
  - id: fuzz-sig
    privateKey: |
      ${indent(signing)}
`;

let be: EchoBackend;
let gw: TestGateway;
let validToken = "";
let expiredToken = "";
const crashes: string[] = [];
let removeTap = () => {};

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const b64url = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

async function issue(): Promise<string> {
  const res = await gw.call(`http://oauth.test${TOKEN}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${b64(`${APP.id}:${APP.secret}`)}` },
    body: "grant_type=client_credentials",
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

beforeAll(async () => {
  be = await startEchoBackend();
  gw = buildGateway(yaml(be.port), { now: NOW });
  removeTap = addLogTap(
    (line) => {
      if (/crashed|unhandled/.test((JSON.parse(line) as { event: string }).event)) crashes.push(line);
    },
    { level: "error" },
  );
  gw.clock.now = NOW - 2 * 3600_000;
  expiredToken = await issue();
  gw.clock.now = NOW;
  validToken = await issue();
});
afterAll(async () => {
  removeTap();
  gw?.close();
  await be?.stop();
});

// ------------------------------------------------------------------------------ generators

/** A credential piece and the client it is valid for (null: it authenticates nobody). */
interface Cred {
  valid: string | null;
  value: string;
}
const valid = (id: string, value: string): Cred => ({ valid: id, value });
const junk = (value: string): Cred => ({ valid: null, value });

/** Header-safe text: what an HTTP client can put in a field value (ISO-8859-1, no CR/LF/NUL). */
const latin1 = (maxLength = 40) => fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength });
const anyText = (maxLength = 40) => fc.oneof(fc.string({ maxLength }), fc.string({ unit: "grapheme", maxLength }), latin1(maxLength));
const b64ish = fc.oneof(fc.base64String({ maxLength: 60 }), fc.string({ unit: fc.constantFrom(..."ABCxyz019+/-_=:. %"), maxLength: 60 }));
const huge = fc.integer({ min: 9000, max: 20000 }).map((n) => "A".repeat(n));

const pairText = fc.oneof(
  fc.constantFrom(`${APP.id}:wrong`, `${APP.id}:`, `:${APP.secret}`, APP.id, `${ID_ONLY}:x`, `fuzz-disabled:fuzz-disabled-secret`, `nobody:${APP.secret}`, `${HASHED.id}:${hashSecret(HASHED.secret)}`),
  fc.tuple(fc.constantFrom(APP.id, HASHED.id, "nobody", ""), anyText(20)).map(([id, s]) => `${id}:${s}`),
  anyText(30),
);

const validBasic = fc.constantFrom(...CLIENTS).map((c) => valid(c.id, b64(`${c.id}:${c.secret}`)));
const basicPayload: fc.Arbitrary<Cred> = fc.oneof(
  { weight: 1, arbitrary: validBasic },
  { weight: 1, arbitrary: fc.constantFrom(...CLIENTS).map((c) => valid(c.id, Buffer.from(`${c.id}:${c.secret}`).toString("base64url"))) },
  { weight: 4, arbitrary: pairText.map((t) => junk(b64(t))) },
  { weight: 2, arbitrary: b64ish.map(junk) },
  { weight: 1, arbitrary: huge.map(junk) },
);

const jwtPart = fc.oneof(fc.base64String({ maxLength: 80 }).map((s) => s.replace(/=+$/, "")), fc.string({ maxLength: 20 }), fc.jsonValue().map(b64url));
const tokenPayload: fc.Arbitrary<Cred> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0).map(() => valid(APP.id, validToken)) },
  { weight: 1, arbitrary: fc.constant(0).map(() => junk(expiredToken)) },
  // A valid token with one part changed, or its signature moved under alg none.
  { weight: 2, arbitrary: fc.tuple(fc.nat(2), jwtPart).map(([i, p]) => junk(validToken.split(".").map((x, j) => (j === i ? p : x)).join("."))) },
  {
    weight: 2,
    arbitrary: fc
      .record({ alg: fc.constantFrom("none", "None", "HS256", "RS256", "ES256", "EdDSA"), kid: fc.constantFrom("fuzz-sig", "nope", ""), typ: fc.constantFrom("at+jwt", "JWT") })
      .map((h) => junk(`${b64url(h)}.${validToken.split(".")[1]}.${h.alg.startsWith("n") || h.alg.startsWith("N") ? "" : validToken.split(".")[2]}`)),
  },
  { weight: 3, arbitrary: fc.tuple(jwtPart, jwtPart, jwtPart).map((p) => junk(p.join("."))) },
  { weight: 1, arbitrary: fc.array(jwtPart, { maxLength: 6 }).map((p) => junk(p.join("."))) },
);

const otoPayload: fc.Arbitrary<Cred> = fc.oneof(
  fc.constant(valid(APP.id, otoBearerFor(APP.id, APP.secret))),
  fc.constantFrom(
    "otoapk_",
    "otoapk__",
    `otoapk_${APP.id}_`,
    `otoapk_${APP.id}`,
    `otoapk__${"0".repeat(64)}`,
    otoBearerFor(APP.id, "wrong"),
    otoBearerFor(HASHED.id, HASHED.secret),
    otoBearerFor(HASHED.id, hashSecret(HASHED.secret)),
  ).map(junk),
  fc.tuple(fc.constantFrom(APP.id, "nobody", "a_b"), fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF"), maxLength: 70 })).map(([id, hex]) => junk(`otoapk_${id}_${hex}`)),
);

const schemeCase = (scheme: string) => fc.constantFrom(scheme, scheme.toLowerCase(), scheme.toUpperCase());
const authorization: fc.Arbitrary<Cred> = fc.oneof(
  fc.tuple(schemeCase("Basic"), fc.constantFrom(" ", "  ", ""), basicPayload).map(([s, sp, c]) => ({ valid: sp ? c.valid : null, value: `${s}${sp}${c.value}` })),
  fc.tuple(schemeCase("Bearer"), fc.oneof(tokenPayload, otoPayload)).map(([s, c]) => ({ valid: c.valid, value: `${s} ${c.value}` })),
  fc.tuple(fc.constantFrom("Digest", "Token", "Negotiate", ""), latin1(60)).map(([s, v]) => junk(`${s} ${v}`)),
  latin1(80).map(junk),
);

/** Where a credential goes on a protected route (every extractor is on, default names). */
type Placement =
  | { at: "header"; name: string; cred: Cred }
  | { at: "query"; name: string; cred: Cred }
  | { at: "cookie"; name: string; cred: Cred };

const apiKeyValue: fc.Arbitrary<Cred> = fc.oneof(fc.constant(valid(ID_ONLY, ID_ONLY)), fc.constantFrom(APP.id, HASHED.id, "fuzz-disabled", "nobody", "").map(junk), latin1(30).map(junk), otoPayload);
const placement: fc.Arbitrary<Placement> = fc.oneof(
  authorization.map((cred) => ({ at: "header" as const, name: "authorization", cred })),
  basicPayload.map((cred) => ({ at: "header" as const, name: "otoroshi-authorization", cred: { ...cred, value: `Basic ${cred.value}` } })),
  fc.oneof(tokenPayload, otoPayload).map((cred) => ({ at: "header" as const, name: "otoroshi-token", cred })),
  apiKeyValue.map((cred) => ({ at: "header" as const, name: "x-api-key", cred })),
  fc.oneof(fc.constantFrom(APP.id, HASHED.id, "nobody").map(junk), latin1(20).map(junk)).map((cred) => ({ at: "header" as const, name: "otoroshi-client-id", cred })),
  fc.oneof(fc.constantFrom(APP.secret, HASHED.secret, "wrong").map(junk), latin1(20).map(junk)).map((cred) => ({ at: "header" as const, name: "otoroshi-client-secret", cred })),
  fc.tuple(fc.constantFrom("bearer_auth", "basic_auth", "x-api-key"), fc.oneof(basicPayload, tokenPayload, otoPayload, apiKeyValue)).map(([name, cred]) => ({ at: "query" as const, name, cred })),
  fc.tuple(fc.constantFrom("access_token", "bearer", "basic_auth", "x-api-key"), fc.oneof(basicPayload, tokenPayload, otoPayload, apiKeyValue)).map(([name, cred]) => ({
    at: "cookie" as const,
    name,
    cred,
  })),
);

/** A custom-headers pair that is valid as a whole (each half alone authenticates nobody). */
const customPair = fc.constantFrom(...CLIENTS).map((c): Placement[] => [
  { at: "header", name: "otoroshi-client-id", cred: valid(c.id, c.id) },
  { at: "header", name: "otoroshi-client-secret", cred: valid(c.id, c.secret) },
]);

const host = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom("api.test", "open.test", "oauth.test") },
  fc.constantFrom(
    "api.test",
    "API.Test",
    "api.test.",
    "api.test:8080",
    "open.test",
    "open.test:1",
    "oauth.test",
    "[::1]",
    "[::1]:8080",
    "[fe80::1%25eth0]:80",
    "127.0.0.1",
    "127.0.0.1:99999",
    "",
    " ",
    "api.test, open.test",
    "localhost:0",
  ),
  fc.domain(),
  fc.tuple(fc.domain(), fc.integer({ min: 0, max: 70000 })).map(([d, p]) => `${d}:${p}`),
  fc.ipV6().map((ip) => `[${ip}]`),
  latin1(30),
);

const method = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS") },
  { weight: 1, arbitrary: fc.constantFrom("get", "post", "PROPFIND", "FOO", "CONNECT", "TRACE", "M-SEARCH") },
);

const pathPiece = fc.oneof(
  fc.constantFrom(
    "",
    "..",
    ".",
    "%",
    "%2e%2e",
    "%2E",
    "%2F",
    "%2f..",
    "%00",
    "%zz",
    "%e9",
    "%C3%A9",
    "%u0041",
    "//",
    ";x=1",
    "a b",
    "~",
    "*",
    "@",
    ":",
    "?",
    "#x",
    "\\",
    "token",
    "jwks.json",
    "introspect",
    "oauth",
    "otoroshi",
    ".well-known",
  ),
  fc.string({ unit: "grapheme", maxLength: 12 }),
  fc.webSegment(),
);
const path = fc.oneof(
  fc.constantFrom("/", TOKEN, INTROSPECT, JWKS, METADATA, `${METADATA}/x`, STATUS, `${OAUTH}/`, `${OAUTH}/nope`, `${TOKEN}/`, `${JWKS}/`),
  fc.tuple(fc.constantFrom("", TOKEN, JWKS, OAUTH, "/a"), fc.array(pathPiece, { maxLength: 8 })).map(([base, parts]) => `${base}/${parts.join("/")}`),
  fc.integer({ min: 2000, max: 12000 }).map((n) => `/${"a".repeat(n)}`),
  fc.integer({ min: 50, max: 400 }).map((n) => "/..".repeat(n)),
);

const queryValue = fc.oneof(fc.constantFrom("", "%", "%zz", "%E9", "+", "a+b", "=", "&", "client_credentials"), fc.webQueryParameters(), fc.string({ maxLength: 20 }));
const query = fc.array(fc.tuple(fc.constantFrom("grant_type", "scope", "bearer_auth", "basic_auth", "x-api-key", "token", "a", "", "%", "a[]"), queryValue), { maxLength: 5 }).map((
  kv,
) => (kv.length ? `?${kv.map(([k, v]) => `${k}=${v}`).join("&")}` : ""));

const contentType = fc.oneof(
  fc.constantFrom(
    "application/json",
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "APPLICATION/JSON; charset=latin1",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/jwt",
    ";",
    "application/json;",
    "application/x-www-form-urlencoded;;;",
  ),
  latin1(30),
);

const formParam = fc.oneof(
  fc.constantFrom(
    "grant_type=client_credentials",
    "grant_type=password",
    "grant_type=",
    "grant_type",
    "scope=read",
    "scope=read%20write",
    "scope=admin",
    "scope=%",
    "client_id=%zz",
    "=",
    "&",
    "client_secret=%E9",
  ),
  fc.constantFrom(...CLIENTS).map((c) => `client_id=${encodeURIComponent(c.id)}&client_secret=${encodeURIComponent(c.secret)}`),
  fc.tuple(fc.constantFrom("client_id", "client_secret", "token", "token_type_hint", "x"), fc.string({ maxLength: 20 })).map(([k, v]) => `${k}=${v}`),
);
const formBody = fc.array(formParam, { maxLength: 7 }).map((ps) => ps.join("&"));
const jsonBody = fc.oneof(
  fc.json({ maxDepth: 3 }),
  fc
    .record(
      {
        grant_type: fc.oneof(fc.constant("client_credentials"), fc.jsonValue()),
        client_id: fc.oneof(fc.constantFrom(APP.id, HASHED.id, "nobody"), fc.jsonValue()),
        client_secret: fc.oneof(fc.constantFrom(APP.secret, HASHED.secret, "wrong"), fc.jsonValue()),
        scope: fc.oneof(fc.constantFrom("read", "read write", "  ", "admin"), fc.jsonValue()),
        token: fc.oneof(fc.constant(0).map(() => validToken), fc.jsonValue()),
      },
      { requiredKeys: [] },
    )
    .map((o) => JSON.stringify(o)),
);
const body = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 600 }) },
  { weight: 3, arbitrary: jsonBody },
  { weight: 3, arbitrary: formBody },
  { weight: 1, arbitrary: fc.integer({ min: 64 * 1024 + 1, max: 80 * 1024 }).map((n) => "x".repeat(n)) },
);

const tokenFormBody = fc
  .array(
    fc.oneof(
      fc.constantFrom(...CLIENTS).map((c) => `client_id=${encodeURIComponent(c.id)}&client_secret=${encodeURIComponent(c.secret)}`),
      fc.constantFrom("scope=read", "scope=read+write", "scope=", "scope=admin", "scope=%zz", "client_id=nobody&client_secret=x", `client_id=${APP.id}&client_secret=wrong`, "x=%"),
    ),
    { maxLength: 2 },
  )
  .map((ps) => ps.join("&"));

/** Token requests: mostly well-formed enough to reach client authentication, some anything. */
const tokenRequestBody = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.tuple(fc.constantFrom("application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8"), tokenFormBody).map(([contentType, b]) => ({
      contentType,
      body: `grant_type=client_credentials&${b}` as Spec["body"],
    })),
  },
  { weight: 2, arbitrary: fc.tuple(fc.constant("application/json"), jsonBody).map(([contentType, b]) => ({ contentType, body: b as Spec["body"] })) },
  { weight: 2, arbitrary: fc.record({ contentType: fc.option(contentType), body }) },
);
const validAuthorization = validBasic.map((c) => ({ valid: c.valid, value: `Basic ${c.value}` }));

const extraHeaders = fc.array(
  fc.tuple(
    fc.oneof(
      fc.constantFrom(
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "otoroshi-authenticated-client-id",
        "connection",
        "te",
        "content-length",
        "transfer-encoding",
        "expect",
        "accept-encoding",
        "x-custom",
        "cookie",
      ),
      fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/),
    ),
    fc.oneof(latin1(40), fc.constantFrom("close", "upgrade", "chunked", "gzip", "100-continue", "-1", "99999999999", "abc", "https", "1.2.3.4, 10.0.0.1")),
  ),
  { maxLength: 4 },
);

interface Spec {
  method: string;
  host: string;
  path: string;
  query: string;
  headers: [string, string][];
  cookies: [string, string][];
  body: string | Uint8Array | undefined;
  contentType: string | null;
}

/** The Request a client would send, or null when no HTTP client could send it. */
function toRequest(s: Spec): Request | null {
  const headers = new Headers();
  try {
    for (const [k, v] of s.headers) headers.append(k, v);
    if (s.cookies.length) headers.append("cookie", s.cookies.map(([k, v]) => `${k}=${v}`).join("; "));
    if (s.contentType !== null) headers.set("content-type", s.contentType);
    headers.set("host", s.host);
    const noBody = s.method.toUpperCase() === "GET" || s.method.toUpperCase() === "HEAD";
    return new Request(`http://fuzz.invalid${s.path}${s.query}`, { method: s.method, headers, body: noBody ? undefined : (s.body as BodyInit | undefined) });
  } catch {
    return null;
  }
}

/** Calls the gateway with a deadline; the body is read whole so streaming errors surface too. */
async function send(req: Request): Promise<{ status: number; headers: Headers; text: string }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PER_REQUEST_MS} ms: ${req.method} ${req.url}`)), PER_REQUEST_MS);
  });
  try {
    return await Promise.race([
      (async () => {
        const res = await gw.call(req);
        return { status: res.status, headers: res.headers, text: await res.text() };
      })(),
      deadline,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const isOAuthPath = (p: string) => p.startsWith(OAUTH) || p === METADATA || p.startsWith(`${METADATA}/`);

/** Every answer: below 500, and an error in the wire shape of the surface that answered. */
function checkShape(req: Request, res: { status: number; headers: Headers; text: string }): void {
  const where = `${req.method} ${req.url.slice(0, 300)} host=${JSON.stringify(req.headers.get("host"))} → ${res.status} ${res.text.slice(0, 200)}`;
  if (res.status >= 500) throw new Error(`5xx: ${where}`);
  if (res.status < 400 || req.method === "HEAD") return;
  const reqPath = new URL(req.url).pathname;
  // A route passes its backend's answers through (the echo backend's listener answers 431 to a
  // 10 KB path itself); the gateway's own refusals carry Otoroshi-Error.
  if (res.headers.get("otoroshi-error") === null && !isOAuthPath(reqPath)) return;
  if (!(res.headers.get("content-type") ?? "").includes("application/json")) throw new Error(`error without JSON: ${where}`);
  const json = JSON.parse(res.text) as Record<string, unknown>;
  if (typeof json["Otoroshi-Error"] === "string") {
    if (Object.keys(json).length !== 1 || res.headers.get("otoroshi-error") !== "true") throw new Error(`bad Otoroshi-Error shape: ${where}`);
    if (isOAuthPath(reqPath) && res.status !== 404 && res.status !== 413 && res.status !== 431) throw new Error(`Otoroshi-Error on an OAuth endpoint: ${where}`);
  } else if (typeof json.error === "string") {
    if (json.error_description !== undefined && typeof json.error_description !== "string") throw new Error(`bad error_description: ${where}`);
    if (!isOAuthPath(reqPath)) throw new Error(`OAuth error shape outside the OAuth endpoints: ${where}`);
  } else throw new Error(`unknown error shape: ${where}`);
}

function checkNoCrash(): void {
  if (crashes.length) throw new Error(`crash logged: ${crashes.join("\n")}`);
}

const params = (runs = RUNS) => ({ numRuns: runs, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false, seed: SEED, endOnFailure: true });
const stats: Record<string, { runs: number; ms: number; statuses: Map<number, number> }> = {};
function tally(name: string, status: number, text = ""): void {
  if (process.env.FUZZ_DEBUG === name) console.log(status, text.slice(0, 160));
  const s = (stats[name] ??= { runs: 0, ms: 0, statuses: new Map() });
  s.runs++;
  s.statuses.set(status, (s.statuses.get(status) ?? 0) + 1);
}
async function timed(name: string, run: () => Promise<void>): Promise<void> {
  const t0 = performance.now();
  await run();
  const s = (stats[name] ??= { runs: 0, ms: 0, statuses: new Map() });
  s.ms = Math.round(performance.now() - t0);
  if (process.env.FUZZ_STATS) console.log(`fuzz ${name}: ${s.runs} requests in ${s.ms} ms; statuses ${JSON.stringify(Object.fromEntries([...s.statuses].sort((a, b) => a[0] - b[0])))}`);
}

// ------------------------------------------------------------------------------ properties

describe("fuzzing the gateway with generated requests", () => {
  test("any request to any host and path gets a non-5xx, well-shaped answer in time", async () => {
    await timed("anything", () =>
      fc.assert(
        fc.asyncProperty(
          fc.record({
            method,
            host,
            path,
            query,
            headers: extraHeaders,
            cookies: fc.array(fc.tuple(fc.stringMatching(/^[a-z_-]{1,12}$/), latin1(20)), { maxLength: 3 }),
            body,
            contentType: fc.option(contentType),
          }),
          fc.array(placement, { maxLength: 3 }),
          async (spec, creds) => {
            for (const p of creds) if (p.at === "header") spec.headers.push([p.name, p.cred.value]);
            const req = toRequest(spec);
            fc.pre(req !== null);
            const res = await send(req!);
            tally("anything", res.status);
            checkShape(req!, res);
            checkNoCrash();
          },
        ),
        params(),
      ));
    expect(stats.anything.runs).toBeGreaterThan(100);
  }, 30_000);

  test("a protected route lets a request through only with a valid credential, and names its client", async () => {
    await timed("protected", () =>
      fc.assert(
        fc.asyncProperty(
          fc.record({ method, path: fc.oneof(fc.constant("/"), path), headers: extraHeaders, body, contentType: fc.option(contentType) }),
          fc.oneof({ weight: 5, arbitrary: fc.array(placement, { minLength: 0, maxLength: 3 }) }, { weight: 1, arbitrary: customPair }),
          async (base, creds) => {
            // Generated paths may land on the OAuth endpoints (domain "*"); this property is about the route.
            const spec: Spec = { ...base, host: "api.test", query: "", cookies: [] };
            const validFor = new Set<string>();
            const q: string[] = [];
            for (const p of creds) {
              if (p.cred.valid) validFor.add(p.cred.valid);
              if (p.at === "header") spec.headers.push([p.name, p.cred.value]);
              else if (p.at === "query") q.push(`${p.name}=${encodeURIComponent(p.cred.value)}`);
              else spec.cookies.push([p.name, p.cred.value]);
            }
            spec.query = q.length ? `?${q.join("&")}` : "";
            // Two halves generated apart may still make a valid custom-headers pair.
            const ids = spec.headers.filter(([k]) => k === "otoroshi-client-id").map(([, v]) => v);
            const secrets = spec.headers.filter(([k]) => k === "otoroshi-client-secret").map(([, v]) => v);
            for (const c of CLIENTS) if (ids.includes(c.id) && secrets.includes(c.secret)) validFor.add(c.id);
            const req = toRequest(spec);
            fc.pre(req !== null);
            // Generated paths may resolve to the OAuth endpoints (domain "*"); this property is about the route.
            const resolved = new URL(req!.url).pathname;
            fc.pre(!isOAuthPath(resolved) && resolved !== STATUS);
            const res = await send(req!);
            tally("protected", res.status, res.text);
            checkShape(req!, res);
            checkNoCrash();
            if (res.status < 300 && req!.method !== "HEAD") {
              const who = new Map((JSON.parse(res.text) as EchoBody).headers).get("otoroshi-authenticated-client-id");
              if (!who || !validFor.has(who)) throw new Error(`let through as ${who} with valid credentials for [${[...validFor]}]: ${req!.method} ${req!.url}`);
            }
            if (res.status < 300 && validFor.size === 0) throw new Error(`let through without a valid credential: ${req!.method} ${req!.url} → ${res.status}`);
          },
        ),
        params(),
      ));
    expect(stats.protected.statuses.get(200) ?? 0).toBeGreaterThan(0);
  }, 30_000);

  test("the token endpoint issues tokens only to authenticated clients and answers RFC 6749 errors otherwise", async () => {
    await timed("token", () =>
      fc.assert(
        fc.asyncProperty(
          fc.record({
            method: fc.oneof({ weight: 8, arbitrary: fc.constant("POST") }, { weight: 1, arbitrary: method }),
            host: fc.oneof(fc.constant("oauth.test"), host),
            path: fc.constantFrom(TOKEN, `${TOKEN}/`),
            query,
            headers: extraHeaders,
            payload: tokenRequestBody,
          }),
          fc.option(fc.oneof(authorization, validAuthorization), { freq: 3 }),
          async ({ payload, ...base }, auth) => {
            const spec: Spec = { ...base, ...payload, cookies: [] };
            if (auth) spec.headers.push(["authorization", auth.value]);
            const req = toRequest(spec);
            fc.pre(req !== null);
            const res = await send(req!);
            tally("token", res.status, res.text);
            checkShape(req!, res);
            checkNoCrash();
            if (res.status === 200) {
              const text = typeof spec.body === "string" ? spec.body : "";
              const inBody = CLIENTS.some((c) => text.includes(encodeURIComponent(c.secret)) || text.includes(JSON.stringify(c.secret)));
              if (!auth?.valid && !inBody) throw new Error(`token issued without valid client credentials: ${req!.url}`);
              const json = JSON.parse(res.text) as Record<string, unknown>;
              if (typeof json.access_token !== "string" || json.token_type !== "Bearer") throw new Error(`bad token response: ${res.text}`);
            }
          },
        ),
        params(),
      ));
    expect(stats.token.statuses.get(200) ?? 0).toBeGreaterThan(0);
  }, 30_000);

  test("introspection, JWKS and metadata answer every request in shape, and report a token active only when it is", async () => {
    await timed("introspect+jwks", () =>
      fc.assert(
        fc.asyncProperty(
          fc.record({
            method: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("POST", "GET", "HEAD") }, { weight: 1, arbitrary: method }),
            host: fc.oneof(fc.constant("oauth.test"), host),
            path: fc.constantFrom(INTROSPECT, `${INTROSPECT}/`, JWKS, METADATA, `${OAUTH}/nope`),
            query,
            headers: extraHeaders,
            contentType: fc.oneof({ weight: 3, arbitrary: fc.constantFrom("application/x-www-form-urlencoded", "application/json") }, fc.option(contentType)),
          }),
          fc.option(fc.oneof(authorization, validAuthorization), { freq: 3 }),
          fc.oneof(tokenPayload, otoPayload, latin1(40).map(junk)),
          fc.constantFrom("form", "json", "raw"),
          async (base, auth, token, kind) => {
            const body = kind === "form" ? `token=${encodeURIComponent(token.value)}` : kind === "json" ? JSON.stringify({ token: token.value }) : token.value;
            const spec: Spec = { ...base, body, cookies: [] };
            if (auth) spec.headers.push(["authorization", auth.value]);
            const req = toRequest(spec);
            fc.pre(req !== null);
            const res = await send(req!);
            tally("introspect+jwks", res.status);
            checkShape(req!, res);
            checkNoCrash();
            if (res.status === 200 && base.path.startsWith(INTROSPECT)) {
              if (!auth?.valid) throw new Error(`introspection answered without client authentication: ${req!.url}`);
              const json = JSON.parse(res.text) as { active?: unknown };
              if (typeof json.active !== "boolean") throw new Error(`bad introspection answer: ${res.text}`);
              if (json.active && token.valid === null) throw new Error(`an invalid token reported active: ${token.value.slice(0, 40)}…`);
            }
          },
        ),
        params(),
      ));
    expect(stats["introspect+jwks"].runs).toBeGreaterThan(100);
  }, 30_000);
});

// What the properties above found once, pinned as examples so they never come back.
describe("regressions found by fuzzing", () => {
  test("a Connection header naming something that is not a field name is ignored, not a 500", async () => {
    for (const value of ["close;", "a b", "keep-alive, \u00e9"]) {
      const res = await gw.call("http://open.test/", { headers: { connection: value } });
      expect(res.status).toBe(200);
      await res.body?.cancel();
    }
    checkNoCrash();
  });

  test("a Host whose port is out of range gets 400 invalid_request from the metadata and token endpoints", async () => {
    const meta = await gw.call(`http://oauth.test${METADATA}`, { headers: { host: "oauth.test:99999" } });
    expect(meta.status).toBe(400);
    expect(await meta.json()).toEqual({ error: "invalid_request", error_description: "invalid Host header" });
    const token = await gw.call(`http://oauth.test${TOKEN}`, {
      method: "POST",
      headers: { host: "oauth.test:99999", "content-type": "application/x-www-form-urlencoded", authorization: `Basic ${b64(`${APP.id}:${APP.secret}`)}` },
      body: "grant_type=client_credentials",
    });
    expect(token.status).toBe(400);
    checkNoCrash();
  });
});
