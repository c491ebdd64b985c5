import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../../src/config/parse.ts";
import { ConfigError, formatProblem } from "../../../src/errors.ts";

const root = join(import.meta.dir, "../../..");

function problems(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(yaml, "otoroshi.yaml", { env });
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map(formatProblem);
  }
}

describe("config parsing", () => {
  test("the bundled seed otoroshi.yaml loads as written", () => {
    const parsed = parseConfig(readFileSync(join(root, "otoroshi.yaml")), "otoroshi.yaml", { env: {} });
    expect(parsed.config.routes[0].id).toBe("foo");
    expect(parsed.config.apikeys[0].authorizedEntities).toEqual(["group_default"]);
    expect(parsed.config.routes[0].groups).toEqual(["default"]);
    expect(parsed.config.plugins[0].config.secure).toBe(false);
    expect(parsed.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  test("defaults: a minimal route gets stripPath, timeout, group default and port by tls", () => {
    const { config } = parseConfig("routes:\n  - id: r\n    frontend: { domains: [a.test] }\n    backend: { targets: [{ hostname: b, tls: true }] }\n", "f.yaml", { env: {} });
    expect(config.routes[0].frontend.stripPath).toBe(true);
    expect(config.routes[0].backend.timeout).toBe(30000);
    expect(config.routes[0].backend.targets[0].port).toBeUndefined(); // 443 chosen at compile time from tls
    expect(config.server.port).toBe(8080);
    expect(config.server.trustedProxies).toEqual([]);
  });

  test("${env:NAME} and ${file:path} are substituted; one trailing newline is dropped; $${ escapes", () => {
    const dir = mkdtempSync(join(tmpdir(), "oto-parse-"));
    try {
      writeFileSync(join(dir, "secret.txt"), "from-file\n");
      writeFileSync(
        join(dir, "otoroshi.yaml"),
        "apikeys:\n  - clientId: a\n    clientSecret: ${env:SECRET_A}\n  - clientId: b\n    clientSecret: ${file:secret.txt}\n  - clientId: c\n    clientSecret: lit-$${env:X}\n",
      );
      const { config, files } = parseConfig(readFileSync(join(dir, "otoroshi.yaml")), join(dir, "otoroshi.yaml"), { env: { SECRET_A: "from-env" } });
      expect(config.apikeys.map((k) => k.clientSecret)).toEqual(["from-env", "from-file", "lit-${env:X}"]);
      expect(files).toEqual([join(dir, "secret.txt")]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("every problem is reported at once, in file order", () => {
    const p = problems("server:\n  port: x\n  nope: 1\nroutes:\n  - id: r\n    frontend: { domains: [] }\n    backend: { targets: [] }\n");
    expect(p[1]).toStartWith('otoroshi.yaml:3:3 server.nope: unknown key "nope" (allowed: port, host, https, trustedProxies, stateDir, idleTimeout, maxRequestBodySize, store,');
    p[1] = "(unknown key)";
    expect(p).toEqual([
      "otoroshi.yaml:2:9 server.port: expected number, received string",
      "(unknown key)",
      "otoroshi.yaml:6:26 routes[0].frontend.domains: a route needs at least one domain",
      "otoroshi.yaml:7:25 routes[0].backend.targets: a route needs at least one target",
    ]);
  });

  test("duplicate YAML keys are an error, not a silent override", () => {
    expect(problems("server:\n  port: 1\n  port: 2\n")[0]).toContain("otoroshi.yaml:3:3");
  });

  test("a non-mapping document is refused with a clear message", () => {
    expect(problems("- a\n- b\n")).toEqual(["otoroshi.yaml:1:1: expected a mapping at the top level (server, plugins, routes, apikeys, keypairs)"]);
  });

  test("validUntil accepts epoch milliseconds and ISO 8601", () => {
    const { config } = parseConfig("apikeys:\n  - { clientId: a, clientSecret: x, validUntil: 1767225600000 }\n  - { clientId: b, clientSecret: x, validUntil: '2027-01-01T00:00:00Z' }\n", "f.yaml", {
      env: {},
    });
    expect(config.apikeys[0].validUntil).toBe(1767225600000);
    expect(config.apikeys[1].validUntil).toBe("2027-01-01T00:00:00Z");
  });

  test('domain "*" without issuer is a warning, not an error', () => {
    const parsed = parseConfig("plugins:\n  - plugin: ClientCredentialService\n    config: { domain: '*' }\n", "f.yaml", { env: {} });
    expect(parsed.warnings.map(formatProblem)).toContainEqual(expect.stringContaining('f.yaml:3:23 plugins[0].config.domain: domain "*" without an issuer'));
  });
});
