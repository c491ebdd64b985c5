// In-process micro-benchmarks of the gateway's request path: the whole gateway built from a YAML
// string (as the integration tests do) with an in-memory upstream, so no socket is involved,
// and the pieces it is made of. Prints µs per operation (median of 5 batches) as markdown.
//   bun bench/micro.ts [--quick]
// Read the numbers as CPU cost on the request's JS thread; the HTTP benches (proxy.sh,
// ablation.sh) say how much of it shows in throughput.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { importPKCS8, SignJWT } from "jose";
import { loadSnapshot } from "../src/config/load.ts";
import { ConfigStore } from "../src/config/store.ts";
import { createGateway } from "../src/gateway.ts";
import { generateKeyPairPem } from "../src/keys/generate.ts";
import { signJwt } from "../src/keys/jwt.ts";
import { importKeyPair } from "../src/keys/keyring.ts";
import { backendRequestHeaders, clientResponseHeaders } from "../src/proxy/headers.ts";
import { createContext } from "../src/request.ts";
import { parseBasic } from "../src/plugins/credentials.ts";
import { compileSecret, hashSecret } from "../src/plugins/secrets.ts";
import type { ConnInfo } from "../src/runtime/types.ts";
import { ApiKeyRegistry } from "../src/plugins/apikeys/registry.ts";
import { readParams } from "../src/plugins/client-credentials/body.ts";
import { authenticateClient } from "../src/plugins/client-credentials/client-auth.ts";
import { noStoreJson } from "../src/plugins/client-credentials/errors.ts";
import { tokenEndpoint } from "../src/plugins/client-credentials/token.ts";
import { createApikeysStage } from "../src/plugins/apikeys/index.ts";
import { extractCredential } from "../src/plugins/apikeys/extract.ts";
import { compileDomain } from "../src/plugins/client-credentials/issuer.ts";
import { createVerifier } from "../src/plugins/client-credentials/verify.ts";
import type { Access } from "../src/plugins/types.ts";

const QUICK = process.argv.includes("--quick");
const BATCH_MS = QUICK ? 100 : 300;

/** µs per call of fn: 5 batches of ~BATCH_MS after a warm-up, median batch. */
async function bench(fn: () => unknown): Promise<number> {
  const isAsync = fn() instanceof Promise;
  let n = 1;
  // Calibrate: grow the batch until it takes ~BATCH_MS (also the warm-up).
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) isAsync ? await fn() : fn();
    const dt = performance.now() - t0;
    if (dt >= BATCH_MS / 4) {
      n = Math.max(1, Math.round((n * BATCH_MS) / dt));
      break;
    }
    n *= 4;
  }
  const per: number[] = [];
  for (let b = 0; b < 5; b++) {
    const t0 = performance.now();
    if (isAsync) { for (let i = 0; i < n; i++) await fn(); }
    else for (let i = 0; i < n; i++) fn();
    per.push(((performance.now() - t0) * 1000) / n);
  }
  per.sort((a, b) => a - b);
  return per[2]!;
}

// ---------------------------------------------------------------- the gateway, in process
const dir = mkdtempSync(join(tmpdir(), "oto-micro-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const es = generateKeyPairPem("ES256").privateKeyPem;
const rs = generateKeyPairPem("RS256").privateKeyPem;
writeFileSync(join(dir, "es.pem"), es);
writeFileSync(join(dir, "rs.pem"), rs);
const SECRET = "bench-secret";
writeFileSync(
  join(dir, "otoroshi.yaml"),
  `
plugins:
  - plugin: ClientCredentialService
    config: { domain: "*", secure: false, issuer: "http://oauth.test", defaultKeyPair: es }
routes:
  - id: open
    frontend: { domains: ["gw.test/open"] }
    backend: { targets: [{ hostname: 127.0.0.1, port: 9 }] }
  - id: apikey
    frontend: { domains: ["gw.test/apikey"] }
    backend: { targets: [{ hostname: 127.0.0.1, port: 9 }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
  - { clientId: client-es, clientSecret: "${hashSecret(SECRET)}", metadata: { jwt-sign-keypair: es } }
  - { clientId: client-rs, clientSecret: "${hashSecret(SECRET)}", metadata: { jwt-sign-keypair: rs } }
keypairs:
  - { id: es, privateKey: "\${file:es.pem}" }
  - { id: rs, privateKey: "\${file:rs.pem}" }
`,
);
const BODY = '{"ok":true,"method":"GET","path":"/small"}';
const UP_HEADERS = { "content-type": "application/json", date: new Date().toUTCString(), "content-length": String(BODY.length) };
const upstream = async (_url: string, _init: RequestInit) => new Response(BODY, { headers: UP_HEADERS });
const { snapshot } = loadSnapshot(join(dir, "otoroshi.yaml"), 1, { env: process.env, clock: () => Date.now(), upstreamFetch: () => upstream });
const store = new ConfigStore(snapshot);
const gateway = createGateway(store);
const info: ConnInfo = { remoteAddress: "127.0.0.1", secure: false };

// What wrk sends: Host only (plus the credential).
const get = (path: string, extra: Record<string, string> = {}) => new Request(`http://gw.test${path}`, { headers: { host: "gw.test", ...extra } });
const BASIC = `Basic ${btoa(`client-es:${SECRET}`)}`;
const tokenRequest = (client: string) =>
  new Request("http://gw.test/.well-known/otoroshi/oauth/token", {
    method: "POST",
    headers: { host: "gw.test", "content-type": "application/x-www-form-urlencoded" },
    body: `grant_type=client_credentials&client_id=${client}&client_secret=${SECRET}`,
  });
const tokenRes = await gateway(tokenRequest("client-es"), info);
if (tokenRes.status !== 200) throw new Error(`token endpoint: ${tokenRes.status} ${await tokenRes.text()}`);
const TOKEN = ((await tokenRes.json()) as { access_token: string }).access_token;
const BEARER = `Bearer ${TOKEN}`;
for (const [path, h] of [["/open/small", {}], ["/apikey/small", { authorization: BASIC }], ["/apikey/small", { authorization: BEARER }]] as const) {
  const r = await gateway(get(path, h), info);
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}`);
}

const rows: [string, number, string][] = [];
const row = async (name: string, fn: () => unknown, note = "") => {
  const us = await bench(fn);
  rows.push([name, us, note]);
  process.stderr.write(`${name}: ${us.toFixed(2)} µs\n`);
};

// Harness: building the Request and reading the in-memory upstream Response (not gateway work).
await row("harness: new Request + upstream Response + drain", async () => {
  get("/open/small");
  await (await upstream("", {})).arrayBuffer();
});
await row("gateway, open route (whole path, in-memory upstream)", async () => (await gateway(get("/open/small"), info)).arrayBuffer());
await row("snapshot.handle, open route (no gateway.ts Hono app)", async () => (await snapshot.handle(get("/open/small"), info)).arrayBuffer());
await row("gateway, API key route, Basic", async () => (await gateway(get("/apikey/small", { authorization: BASIC }), info)).arrayBuffer());
await row("gateway, API key route, bearer JWT (cache hit)", async () => (await gateway(get("/apikey/small", { authorization: BEARER }), info)).arrayBuffer());
await row("gateway, token endpoint ES256 (form POST)", async () => (await gateway(tokenRequest("client-es"), info)).arrayBuffer());
await row("gateway, token endpoint RS256 (form POST)", async () => (await gateway(tokenRequest("client-rs"), info)).arrayBuffer());
await row("harness: new Request with a form body, body read", async () => tokenRequest("client-es").arrayBuffer());

// The token endpoint without the two Hono apps in front of it (gateway.ts, the service's own).
const ccsConfig = snapshot.config.plugins[0]!.config;
const registry = new ApiKeyRegistry(snapshot.config.apikeys);
const tokenDeps = { config: ccsConfig, signingKeys: snapshot.signingKeys, registry, guard: null };
await row("tokenEndpoint() ES256 called directly (no Hono)", async () => (await tokenEndpoint(createContext(tokenRequest("client-es"), info, () => false, Date.now()), tokenDeps)).arrayBuffer());
await row("  readParams (form body)", () => readParams(tokenRequest("client-es"), 65536));
const params = await readParams(tokenRequest("client-es"), 65536);
const tctx = createContext(tokenRequest("client-es"), info, () => false, Date.now());
await row("  authenticateClient (body credentials)", () => authenticateClient(tctx, params, { registry, guard: null }));
await row("  noStoreJson (token response)", () => noStoreJson(200, { access_token: TOKEN, token_type: "Bearer", expires_in: 3600 }));

// The Apikeys stage alone, on a context built once (what the route plugin adds to a request).
const apikeysConfig = snapshot.config.routes[1]!.plugins[0]!.config;
const verifier = createVerifier(ccsConfig, snapshot.signingKeys, compileDomain(ccsConfig.domain));
const stage = createApikeysStage(apikeysConfig, { registry, verifyToken: verifier.verifyToken, guard: null, quotas: null });
const routeInfo = { id: "apikey", groups: new Set(["default"]) };
const newAccess = (): Access => ({ apikey: null, wipeHeaders: new Set<string>(), wipeQuery: null, wipeCookies: null, setHeaders: [], responseHeaders: [] });
const basicCtx = createContext(get("/apikey/small", { authorization: BASIC }), info, () => false, Date.now());
const bearerCtx = createContext(get("/apikey/small", { authorization: BEARER }), info, () => false, Date.now());
await row("Apikeys stage, Basic (extract + check + authorize + wipe lists)", () => stage(basicCtx, routeInfo, newAccess()));
await row("  extractCredential, Basic (default extractors)", () => extractCredential(basicCtx, apikeysConfig.extractors));
await row("Apikeys stage, bearer JWT (cache hit)", () => stage(bearerCtx, routeInfo, newAccess()));
await row("  extractCredential, bearer", () => extractCredential(bearerCtx, apikeysConfig.extractors));
await row("  verifyToken (cache hit)", () => verifier.verifyToken(TOKEN, bearerCtx));

// ---------------------------------------------------------------- pieces
const req = get("/open/small");
const authReq = get("/apikey/small", { authorization: BASIC });
const match = () => true;
await row("createContext", () => createContext(req, info, () => false, Date.now()));
await row("backendRequestHeaders (Host only)", () => backendRequestHeaders(req.headers, { clientIp: "127.0.0.1", trusted: false, secure: false, host: "gw.test" }, null, null));
await row(
  "backendRequestHeaders (+ wipe authorization, set client id)",
  () =>
    backendRequestHeaders(
      authReq.headers,
      { clientIp: "127.0.0.1", trusted: false, secure: false, host: "gw.test" },
      new Set(["otoroshi-authenticated-client-id", "authorization", "x-api-key", "otoroshi-token", "otoroshi-authorization"]),
      [["otoroshi-authenticated-client-id", "client-es"]],
    ),
);
await row("  new Headers(incoming) alone", () => new Headers(req.headers));
await row("  12 × Headers.delete of absent names", () => {
  const h = new Headers(req.headers);
  for (const n of ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate", "http2-settings", "host", "expect"]) {
    h.delete(n);
  }
});
const DROP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
  "http2-settings",
  "host",
  "expect",
  "forwarded",
  "x-real-ip",
]);
await row("  alternative: one pass over incoming names, delete only those present", () => {
  const h = new Headers(req.headers);
  for (const n of req.headers.keys()) if (DROP.has(n) || n.startsWith("x-forwarded-")) h.delete(n);
  h.set("x-forwarded-for", "127.0.0.1");
  h.set("x-forwarded-proto", "http");
  h.set("x-forwarded-host", "gw.test");
  if (!h.has("accept-encoding")) h.set("accept-encoding", "identity");
  if (!h.has("user-agent")) h.set("user-agent", "");
});
const upRes = new Response(BODY, { headers: UP_HEADERS });
await row("clientResponseHeaders", () => clientResponseHeaders(upRes.headers));
await row("new Response(body, { status, statusText, headers })", () => new Response(upRes.body, { status: 200, statusText: "OK", headers: upRes.headers }));
await row("AbortController + signal listener + setTimeout/clearTimeout", () => {
  const c = new AbortController();
  const r = new Request("http://x/");
  r.signal.addEventListener("abort", () => c.abort(), { once: true });
  clearTimeout(setTimeout(() => c.abort(), 30_000));
});
await row("  of which new Request (harness)", () => new Request("http://x/"));
await row("  new AbortController()", () => new AbortController());
await row("  setTimeout + clearTimeout", () => clearTimeout(setTimeout(match, 30_000)));
await row("  request.signal + addEventListener", () => new Request("http://x/").signal.addEventListener("abort", match, { once: true }));
const check = compileSecret(hashSecret(SECRET));
await row("parseBasic (regex + base64 + TextDecoder)", () => parseBasic(BASIC.slice(6)));
await row("secret check (sha256 + timingSafeEqual)", () => check(SECRET));

// ---------------------------------------------------------------- signing
const esPair = importKeyPair("es", es);
const rsPair = importKeyPair("rs", rs);
const claims = () => {
  const iat = Math.floor(Date.now() / 1000);
  return { iss: "http://oauth.test", sub: "c", aud: "otoroshi", client_id: "c", cid: "c", jti: randomUUID(), iat, nbf: iat, exp: iat + 3600 };
};
const joseEs = await importPKCS8(es, "ES256");
const joseRs = await importPKCS8(rs, "RS256");
await row("signJwt ES256 (gateway, node:crypto)", () => signJwt(esPair, claims()));
await row("jose SignJWT ES256", () => new SignJWT(claims()).setProtectedHeader({ alg: "ES256", typ: "at+jwt", kid: "es" }).sign(joseEs));
await row("signJwt RS256 (gateway, node:crypto)", () => signJwt(rsPair, claims()));
await row("jose SignJWT RS256", () => new SignJWT(claims()).setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid: "rs" }).sign(joseRs));
await row("randomUUID", () => randomUUID());

console.log(`## Micro-benchmarks (in process, Bun ${Bun.version})\n`);
console.log("| operation | µs per op |");
console.log("|---|---|");
for (const [name, us] of rows) console.log(`| ${name.replace(/^ {2}/, "· ")} | ${us < 10 ? us.toFixed(2) : us.toFixed(1)} |`);
