import { describe, expect, test } from "bun:test";
import { Config } from "../../../src/config/schema.ts";
import { acmeDomains, coveredBy } from "../../../src/tls/acme/domains.ts";

const config = (routes: { domains: string[]; enabled?: boolean }[], domains?: string[]) =>
  Config.parse({
    server: { https: { port: 0, acme: { ...(domains ? { domains } : {}) } } },
    routes: routes.map((r, i) => ({ id: `r${i}`, enabled: r.enabled ?? true, frontend: { domains: r.domains }, backend: { targets: [{ hostname: "127.0.0.1" }] } })),
  });

describe("ACME names", () => {
  test("default: every exact host of the enabled routes, once, without path", () => {
    const { domains } = acmeDomains(config([{ domains: ["api.example.com/v1", "API.example.com", "www.example.com"] }, { domains: ["off.example.com"], enabled: false }]), []);
    expect(domains).toEqual(["api.example.com", "www.example.com"]);
  });
  test("wildcards, single labels and IP addresses are skipped with a reason", () => {
    const { domains, skipped } = acmeDomains(config([{ domains: ["*.example.com", "localhost", "10.0.0.1", "ok.example.com"] }]), []);
    expect(domains).toEqual(["ok.example.com"]);
    expect(skipped.map((s) => s.name)).toEqual(["*.example.com", "localhost", "10.0.0.1"]);
    expect(skipped[0].reason).toContain("DNS-01");
  });
  test("names a keyPairs certificate serves (exact or by wildcard) are left to it", () => {
    const { domains, skipped } = acmeDomains(config([{ domains: ["a.example.com", "b.example.com", "c.other.com"] }]), ["a.example.com", "*.other.com"]);
    expect(domains).toEqual(["b.example.com"]);
    expect(skipped.map((s) => s.reason)).toEqual(["served by a keyPairs certificate", "served by a keyPairs certificate"]);
  });
  test("acme.domains replaces the routes' names", () => {
    expect(acmeDomains(config([{ domains: ["a.example.com"] }], ["x.example.com"]), []).domains).toEqual(["x.example.com"]);
  });
  test("coveredBy: one label under a wildcard, not two", () => {
    expect(coveredBy("a.b.com", ["*.b.com"])).toBe(true);
    expect(coveredBy("x.a.b.com", ["*.b.com"])).toBe(false);
    expect(coveredBy("b.com", ["*.b.com"])).toBe(false);
  });
});
