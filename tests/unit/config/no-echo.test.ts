// Class test (issue 8, item 10): no config problem or warning quotes a value from the file.
// Values may be secrets (a clientSecret with a bad escape once came back in the YAML error);
// messages say where (file:line:col and the path) and what is wrong, never what was written.
// Keys may be named: they are not secret, unless a typo made a value part of one
// (`clientSecret:s3cr3t` without a space), so such keys are not shown either.
//
// 1. Every golden invalid config (tests/fixtures/configs/invalid): no message contains any of
//    the file's values (of 6 characters or more; shorter ones are words like "true" or "80").
// 2. Generated configs with a marker planted in values of every kind, written raw into the YAML
//    text (so YAML syntax errors, bad escapes, aliases and tags are produced too): no message
//    contains any 4-character piece of the marker, in any case.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CST, Parser } from "yaml";
import { loadSnapshot } from "../../../src/config/load.ts";
import { ConfigError, type ConfigProblem, formatProblem } from "../../../src/errors.ts";
import { bunUpstream } from "../../helpers/gateway.ts";

const dir = join(import.meta.dir, "../../fixtures/configs/invalid");

/** What `check` would print for the file at `file` (problems, or warnings). */
function messages(file: string, env: Record<string, string> = {}): ConfigProblem[] {
  try {
    const { parsed } = loadSnapshot(file, 1, { env, clock: () => Date.parse("2026-06-01T00:00:00Z"), upstreamFetch: bunUpstream, dryRun: true });
    return parsed.warnings;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems;
  }
}

/** Scalar values (not keys) as written, and unquoted. */
function valuesOf(text: string): string[] {
  const out = new Set<string>();
  const keys = new Set<string>();
  const scalar = (
    t: CST.Token | null | undefined,
  ) => (t && (t.type === "scalar" || t.type === "double-quoted-scalar" || t.type === "single-quoted-scalar" || t.type === "block-scalar") ? t.source : undefined);
  for (const tok of new Parser().parse(text)) {
    if (tok.type !== "document") continue;
    CST.visit(tok, (item) => {
      const k = scalar(item.key);
      if (k !== undefined) keys.add(k);
      const v = scalar(item.value);
      if (v === undefined) return;
      out.add(v.trim());
      out.add(v.trim().replace(/^["']|["']$/g, ""));
    });
  }
  return [...out].filter((v) => v.length >= 6 && !keys.has(v));
}

describe("no problem message quotes a value from the file", () => {
  const cases = readdirSync(dir).filter((f) => f.endsWith(".yaml"));

  test("there are golden configs to check", () => {
    expect(cases.length).toBeGreaterThan(10);
  });

  for (const name of cases) {
    test(`golden ${name}`, () => {
      const text = readFileSync(join(dir, name), "utf8");
      const found = messages(join(dir, name)).map((p) => p.message);
      for (const v of valuesOf(text)) for (const m of found) expect(`${m}`).not.toContain(v);
    });
  }

  // A marker of rare letters: any 4-character piece of it in a message is an echo.
  const MARKER = "QZXJVKWQPF";
  const pieces = Array.from({ length: MARKER.length - 3 }, (_, i) => MARKER.slice(i, i + 4));
  const echoes = (m: string) => pieces.some((p) => m.toUpperCase().includes(p));

  // Raw YAML text for a value holding the marker: plain, quoted, with bad escapes, as an alias,
  // a tag, an anchor, a reference, a URL, a number with a unit, a key-looking string…
  const VALUES = [
    MARKER,
    `"${MARKER}"`,
    `'${MARKER}'`,
    `"ab\\U${MARKER}"`,
    `"\\x${MARKER}"`,
    `*${MARKER}`,
    `!${MARKER} x`,
    `&${MARKER}`,
    `@${MARKER}`,
    `"%${MARKER}"`,
    `\`${MARKER}`,
    `sha256:${MARKER}`,
    `"sha256:${MARKER.toLowerCase()}"`,
    `\${env:${MARKER}}`,
    `\${file:${MARKER}.txt}`,
    `"pre-\${env:${MARKER}}"`,
    `\${env:}${MARKER}`,
    `http://${MARKER}.test/x`,
    `${MARKER}.test:8080`,
    `"${MARKER} with spaces"`,
    `"${MARKER}("`,
    `"[${MARKER}"`,
    `redis://:${MARKER}@h:99999/0`,
    `redis://[${MARKER}/0`,
    `"redis://u:${MARKER}@cache:6379/${MARKER}"`,
    `5${MARKER}`,
    `"-----BEGIN ${MARKER}-----\\nAAAA\\n-----END ${MARKER}-----"`,
    `"-----BEGIN PRIVATE KEY-----\\n${MARKER}\\n-----END PRIVATE KEY-----"`,
    `"10.0.0.0/${MARKER}"`,
    `"${MARKER}/33"`,
    `route_${MARKER}`,
    `group_${MARKER}`,
    `"${MARKER}:${MARKER}"`,
    `[${MARKER}]`,
    `{ k: ${MARKER} }`,
  ];
  const value = fc.constantFrom(...VALUES);

  // Where the value goes: every kind of field, by the text around it.
  const PLACES = [
    (v: string) => `apikeys:\n  - clientId: a\n    clientSecret: ${v}\n`,
    (v: string) => `apikeys:\n  - clientId: ${v}\n    clientSecret: s\n`,
    (v: string) => `apikeys:\n  - clientId: a\n    clientSecret: s\n    previousSecrets: [{ secret: ${v}, validUntil: 2030-01-01T00:00:00Z }]\n`,
    (v: string) => `apikeys:\n  - clientId: a\n    clientSecret: s\n    validUntil: ${v}\n`,
    (v: string) => `apikeys:\n  - clientId: a\n    clientSecret: s\n    authorizedEntities: [${v}]\n`,
    (v: string) => `apikeys:\n  - clientId: a\n    clientSecret: s\n    metadata: { jwt-sign-keypair: ${v}, scope: ${v} }\n`,
    (v: string) => `apikeys:\n  - clientId: a\n    clientSecret: s\n    dailyQuota: ${v}\n`,
    (v: string) => `routes:\n  - id: ${v}\n    frontend: { domains: [a.test] }\n    backend: { targets: [{ hostname: b }] }\n`,
    (v: string) => `routes:\n  - id: r\n    frontend: { domains: [${v}] }\n    backend: { targets: [{ hostname: b }] }\n`,
    (v: string) => `routes:\n  - id: r\n    frontend:\n      domains:\n        - ${v}\n    backend: { targets: [{ hostname: b }] }\n`,
    (v: string) => `routes:\n  - id: r\n    frontend: { domains: [a.test], methods: [${v}] }\n    backend: { targets: [{ hostname: b }] }\n`,
    (v: string) => `routes:\n  - id: r\n    frontend: { domains: [a.test] }\n    backend:\n      targets:\n        - hostname: ${v}\n`,
    (v: string) => `routes:\n  - id: r\n    frontend: { domains: [a.test] }\n    backend: { targets: [{ hostname: b, tls: true, tlsConfig: { ca: ${v} } }] }\n`,
    (v: string) => `routes:\n  - id: r\n    frontend: { domains: [a.test] }\n    backend: { targets: [{ hostname: b }], root: ${v}, timeout: ${v} }\n`,
    (v: string) =>
      `routes:\n  - id: r\n    frontend: { domains: [a.test] }\n    backend: { targets: [{ hostname: b }] }\n    plugins:\n      - plugin: Apikeys\n        config: { clientIdHeaderName: ${v} }\n`,
    (v: string) => `routes:\n  - id: r\n    frontend: { domains: [a.test] }\n    backend: { targets: [{ hostname: b }] }\n    plugins:\n      - plugin: ${v}\n`,
    (v: string) => `plugins:\n  - plugin: ClientCredentialService\n    config: { domain: ${v}, issuer: ${v} }\n`,
    (v: string) => `plugins:\n  - plugin: ClientCredentialService\n    config: { defaultKeyPair: ${v}, previousKeyPairs: [${v}], audience: ${v} }\n`,
    (v: string) => `server:\n  store: ${v}\n`,
    (v: string) => `server:\n  host: ${v}\n  trustedProxies: [${v}]\n`,
    (v: string) => `server:\n  stateDir: ${v}\nplugins:\n  - plugin: ClientCredentialService\n`,
    (v: string) => `server:\n  storeUnavailable: ${v}\n  idleTimeout: ${v}\n`,
    (v: string) => `server:\n  https: { port: 8443, keyPairs: [${v}] }\n`,
    (v: string) => `keypairs:\n  - id: k\n    privateKey: ${v}\n`,
    (v: string) => `keypairs:\n  - id: ${v}\n    privateKey: ${v}\n    certificate: ${v}\n`,
    (v: string) => `${v}\n`,
    (v: string) => `- ${v}\n`,
    // A missing space after a colon makes the value part of a key: keys with it are not shown.
    (v: string) => `apikeys:\n  - { clientId: a, clientSecret:${v} }\n`,
    (v: string) => `apikeys:\n  - clientId: a\n    clientSecret:${v}\n`,
    (v: string) => `apikeys:\n  - clientId: a\n    clientSecret ${v}: x\n`,
    (v: string) => `apikeys:\n  - { clientId: a, clientSecret: s, metadata: { scope:${v} } }\n`,
    (v: string) => `server: { store:${v} }\n`,
  ];
  const place = fc.constantFrom(...PLACES);

  test("every kind of value in every place (each of them alone)", () => {
    const tmp = mkdtempSync(join(tmpdir(), "oto-noecho-"));
    const file = join(tmp, "otoroshi.yaml");
    let withProblems = 0;
    try {
      for (const p of PLACES) {
        for (const v of VALUES) {
          writeFileSync(file, p(v));
          const found = messages(file);
          if (found.length) withProblems++;
          expect({ yaml: p(v), bad: found.map(formatProblem).filter((m) => echoes(m.slice(file.length))) }).toEqual({ yaml: p(v), bad: [] });
        }
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    expect(withProblems).toBeGreaterThan((PLACES.length * VALUES.length) / 2);
  }, 60_000);

  test("generated configs with a marker in their values: no message contains any piece of it", () => {
    const tmp = mkdtempSync(join(tmpdir(), "oto-noecho-"));
    const file = join(tmp, "otoroshi.yaml");
    let withProblems = 0;
    try {
      fc.assert(
        fc.property(fc.array(fc.tuple(place, value), { minLength: 1, maxLength: 2 }), (parts) => {
          // Several slices joined: the later top-level keys may repeat (duplicate keys, too).
          writeFileSync(file, parts.map(([p, v]) => p(v)).join(""));
          const found = messages(file);
          if (found.length) withProblems++;
          const bad = found.map(formatProblem).filter((m) => echoes(m.slice(file.length)));
          expect(bad).toEqual([]);
        }),
        { numRuns: 600, interruptAfterTimeLimit: 20_000, seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined },
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    // The generator does produce problems (a test that never sees one proves nothing).
    expect(withProblems).toBeGreaterThan(100);
  }, 60_000);
});
