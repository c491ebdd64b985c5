// Differential test of the gateway's own JWT code (src/keys/jwt.ts, node:crypto) against jose:
// every token the gateway issues verifies with jose against the JWKS the gateway publishes, and
// every token of an attack corpus (jwt-corpus.ts) is refused by both, through the verifier's
// entry point and through the request path (a Bearer token on an Apikeys route, introspection).
// The few tokens where the gateway is deliberately stricter than jose say why in the corpus.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "bun";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import fc from "fast-check";
import type { JwsAlg } from "../../../src/keys/keyring.ts";
import { type EchoBackend, startEchoBackend } from "../../helpers/echo-backend.ts";
import { buildGateway, type TestGateway } from "../../helpers/gateway.ts";
import {
  ALGS,
  AUDIENCE,
  buildCorpus,
  type Case,
  claims,
  clientOf,
  gatewayVerifier,
  header,
  ISSUER,
  joseVerifier,
  type Keys,
  kidOf,
  loadKeys,
  mismatches,
  NOW,
  PEMS,
  publishedJwks,
  token,
} from "./jwt-corpus.ts";

const indent = (pem: string) => pem.trim().split("\n").join("\n      ");
const SECRET = "differential-secret";

let be: EchoBackend;
let gw: TestGateway;
let fetched = 0;
let counter: ReturnType<typeof Bun.serve>;
let keys: Keys;
let corpus: Case[];

beforeAll(async () => {
  // jku and x5u point here: a verifier that fetched them would be counted.
  counter = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => (fetched++, Response.json(publishedJwks(keys))) });
  keys = loadKeys();
  corpus = buildCorpus(keys, `http://127.0.0.1:${counter.port}/jwks.json`);
  be = await startEchoBackend();
  gw = buildGateway(
    `
plugins:
  - plugin: ClientCredentialService
    config: { domain: 'issuer\\.test', secure: false, issuer: "${ISSUER}", defaultKeyPair: ${kidOf("ES256")} }
routes:
  - id: api
    frontend: { domains: [api.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
${ALGS.map((a) => `  - { clientId: ${clientOf(a)}, clientSecret: ${SECRET}, metadata: { jwt-sign-keypair: ${kidOf(a)} } }`).join("\n")}
keypairs:
${
      Object.entries(PEMS)
        .map(([id, pem]) => `  - id: ${id}\n    privateKey: |\n      ${indent(pem)}`)
        .join("\n")
    }
`,
    { now: NOW * 1000 },
  );
});
afterAll(async () => {
  gw?.close();
  await be?.stop();
  counter?.stop(true);
});

const basic = (id: string) => `Basic ${Buffer.from(`${id}:${SECRET}`).toString("base64")}`;

async function issue(alg: JwsAlg): Promise<string> {
  const res = await gw.call("http://issuer.test/.well-known/otoroshi/oauth/token", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(clientOf(alg)) },
    body: "grant_type=client_credentials",
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function jwksDoc(): Promise<{ keys: Record<string, unknown>[] }> {
  const res = await gw.call("http://issuer.test/.well-known/otoroshi/oauth/jwks.json");
  expect(res.status).toBe(200);
  return (await res.json()) as { keys: Record<string, unknown>[] };
}

/** Through the request path: a Bearer token on the Apikeys route, and introspection. */
async function requestPath(t: string, now: number): Promise<{ route: boolean; introspection: boolean }> {
  gw.clock.now = now * 1000;
  const route = await gw.call("http://api.test/resource", { headers: { authorization: `Bearer ${t}` } });
  await route.body?.cancel();
  expect([200, 401]).toContain(route.status);
  const intro = await gw.call("http://issuer.test/.well-known/otoroshi/oauth/token/introspect", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(clientOf("ES256")) },
    body: new URLSearchParams({ token: t }).toString(),
  });
  // A token over the endpoint's 64 KiB body limit is refused before it is read.
  expect([200, 413]).toContain(intro.status);
  const active = intro.status === 200 && ((await intro.json()) as { active: boolean }).active;
  if (intro.status !== 200) await intro.body?.cancel();
  return { route: route.status === 200, introspection: active };
}

describe("the gateway's JWT code against jose", () => {
  test("the JWKS publishes exactly the signing keys, and every issued token verifies with jose against it", async () => {
    gw.clock.now = NOW * 1000;
    const published = await jwksDoc();
    const byKid = (doc: { keys: Record<string, unknown>[] }) => [...doc.keys].sort((a, b) => String(a.kid).localeCompare(String(b.kid)));
    expect(byKid(published)).toEqual(byKid(publishedJwks(keys)));
    expect(published.keys.map((k) => k.kid)).not.toContain("k-spare");
    const jose = joseVerifier(published);
    for (const alg of ALGS) {
      const t = await issue(alg);
      expect([alg, await jose(t, NOW)]).toEqual([alg, "accept"]);
      expect([alg, await requestPath(t, NOW)]).toEqual([alg, { route: true, introspection: true }]);
    }
  });

  test("the corpus: the verifier's entry point and jose agree, or the gateway refuses for a stated reason", async () => {
    expect(corpus.length).toBeGreaterThan(300);
    const jose = joseVerifier(await jwksDoc());
    expect(await mismatches(corpus, gatewayVerifier(keys), jose)).toEqual([]);
  });

  test("the corpus through the request path: the route and introspection accept exactly what the verifier accepts", async () => {
    const verify = gatewayVerifier(keys);
    const wrong: string[] = [];
    for (const c of corpus) {
      const accepted = verify(c.token, c.now) === "accept";
      const seen = await requestPath(c.token, c.now);
      if (seen.route !== accepted || seen.introspection !== accepted) wrong.push(`${c.name}: verifier ${accepted}, ${JSON.stringify(seen)}`);
    }
    expect(wrong).toEqual([]);
  });

  test("jku and x5u are never fetched, even on tokens that are accepted", async () => {
    const withJku = corpus.filter((c) => c.name.includes("jku"));
    expect(withJku.some((c) => "both" in c.expect && c.expect.both === "accept")).toBe(true);
    const jose = joseVerifier(await jwksDoc());
    for (const c of withJku) {
      gatewayVerifier(keys)(c.token, c.now);
      await jose(c.token, c.now);
      await requestPath(c.token, c.now);
    }
    expect(fetched).toBe(0);
  });

  test("random tokens: mutated headers, claims, signers and segments get the same verdict from both", async () => {
    const verify = gatewayVerifier(keys);
    const jose = joseVerifier(await jwksDoc());
    const { ours, attacker } = keys;
    const offset = fc.integer({ min: -120, max: 120 });
    const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
    const arb = fc.record({
      alg: fc.constantFrom(...ALGS),
      signer: fc.constantFrom<"own" | "other" | "attacker">("own", "other", "attacker"),
      headerAlg: fc.constantFrom<string | null>(null, ...ALGS, "none", "HS256", "PS256"),
      kid: fc.constantFrom<string | null | undefined>(null, undefined, "nope", ...ALGS.map(kidOf)),
      typ: fc.constantFrom<string | undefined>("at+jwt", "application/at+jwt", "AT+JWT", "JWT", undefined),
      exp: optional(offset),
      nbf: optional(offset),
      iat: optional(offset),
      aud: fc.constantFrom<unknown>(AUDIENCE, "other", ["other", AUDIENCE], [], undefined),
      iss: fc.constantFrom<unknown>(ISSUER, "https://evil.test", 7, undefined),
      tamper: fc.constantFrom("none", "flip", "truncate", "swap"),
      at: fc.nat(),
      clock: offset,
    });
    const differences: string[] = [];
    await fc.assert(
      fc.asyncProperty(arb, async (r) => {
        const own = ours[r.alg];
        const kp = r.signer === "own" ? own : r.signer === "other" ? ours[r.alg === "ES256" ? "EdDSA" : "ES256"] : attacker;
        const h: Record<string, unknown> = header(own, { typ: r.typ });
        if (r.headerAlg !== null) h.alg = r.headerAlg;
        if (r.kid !== null) h.kid = r.kid;
        const body = claims(r.alg, { aud: r.aud, iss: r.iss });
        for (const k of ["exp", "nbf", "iat"] as const) body[k] = r[k] === undefined ? undefined : NOW + r[k]!;
        let t = token(kp, body, h);
        const [hs, ps, ss] = t.split(".");
        if (r.tamper === "flip") {
          const i = r.at % t.length;
          t = t.slice(0, i) + (t[i] === "A" ? "B" : "A") + t.slice(i + 1);
        } else if (r.tamper === "truncate") t = `${hs}.${ps}.${ss!.slice(0, r.at % ss!.length)}`;
        else if (r.tamper === "swap") t = `${hs}.${token(kp, { ...body, sub: "admin" }, h).split(".")[1]}.${ss}`;
        const now = NOW + r.clock;
        const g = verify(t, now);
        const j = await jose(t, now);
        if ((g === "accept") === (j === "accept")) return;
        // The only differences allowed are the corpus's stated ones that random tokens can reach.
        const sig = t.split(".")[2] ?? "";
        const nonCanonical = Buffer.from(sig, "base64url").toString("base64url") !== sig;
        const reason = g === "unknown_kid" && r.kid === undefined ? "no kid" : g === "iat_in_future" ? "iat in the future" : nonCanonical ? "non-canonical signature spelling" : null;
        if (reason === null) differences.push(`${JSON.stringify(r)}: gateway ${g}, jose ${j}`);
      }),
      { numRuns: 400, seed: 20261129 },
    );
    expect(differences).toEqual([]);
  });
});

// Deno runs the same sources with its own node:crypto (another implementation): same corpus there.
const root = resolve(import.meta.dir, "../../..");
const deno = resolve(root, "node_modules/.bin/deno");

test.skipIf(!existsSync(deno))("on Deno, the verifier and jose agree on the same corpus", async () => {
  const proc = spawn([deno, "run", "-A", `--config=${resolve(root, "deno.json")}`, "tests/unit/keys/jwt-differential-deno.ts"], {
    cwd: root,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" },
  });
  const timer = setTimeout(() => proc.kill(), 60_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  if (code !== 0) console.error(stderr);
  const report = JSON.parse(stdout.trim().split("\n").at(-1)!) as { cases: number; mismatches: string[]; fetched: number };
  expect(report.cases).toBeGreaterThan(300);
  expect(report.mismatches).toEqual([]);
  expect(report.fetched).toBe(0);
  expect(code).toBe(0);
}, 90_000);
