// The Grafana dashboard and the PromQL in docs/operations.md query only metric names the
// gateway exports: a renamed metric fails here, not on someone's screen.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "../../../src/config/parse.ts";
import { compileSnapshot } from "../../../src/config/compile.ts";
import { ConfigStore } from "../../../src/config/store.ts";
import { gauges } from "../../../src/monitoring/gauges.ts";
import { metrics, renderMetrics } from "../../../src/monitoring/metrics.ts";
import { parseExposition } from "./prom.ts";

const root = join(import.meta.dir, "../../..");
const NAME = /\b(?:otoroshi|process)_[a-z_]+\b/g;

function exported(): Set<string> {
  const yaml = "server: { monitoring: { perClientMetrics: true } }\nroutes:\n  - id: d\n    frontend: { domains: [d.test] }\n    backend: { targets: [{ hostname: 127.0.0.1, port: 9 }] }\n";
  const snap = compileSnapshot(parseConfig(yaml, "d.yaml", { env: {} }), "d.yaml", 1, { upstreamFetch: () => fetch, clock: Date.now, dryRun: true });
  metrics.route("d").observe("GET", 200, 0.01);
  // The certificate families exist when an HTTPS listener registers its certificates.
  gauges.setCertificateSource(() => [{ name: "d.test", source: "acme", notAfter: Date.now() + 86_400_000, failing: false }]);
  const m = parseExposition(renderMetrics(new ConfigStore(snap)));
  gauges.setCertificateSource(() => []);
  const names = new Set(m.type.keys());
  for (const [name, type] of m.type) if (type === "histogram") { for (const s of ["_bucket", "_sum", "_count"]) names.add(name + s); }
  return names;
}

describe("dashboards and queries", () => {
  const names = exported();

  test("docs/grafana-dashboard.json: valid JSON, and every query names exported metrics", () => {
    const dash = JSON.parse(readFileSync(join(root, "docs/grafana-dashboard.json"), "utf8")) as { panels: { targets: { expr: string }[] }[] };
    const exprs = dash.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(10);
    for (const e of exprs) for (const n of e.match(NAME) ?? []) expect({ query: e, name: n, exported: names.has(n) }).toEqual({ query: e, name: n, exported: true });
  });

  test("docs/operations.md: the metrics table and the example PromQL name exported metrics", () => {
    const text = readFileSync(join(root, "docs/operations.md"), "utf8");
    const section = text.slice(text.indexOf("## What to watch"), text.indexOf("\n## ", text.indexOf("## What to watch") + 5));
    const used = new Set(section.match(NAME) ?? []);
    expect(used.size).toBeGreaterThan(10);
    for (const n of used) expect({ name: n, exported: names.has(n) }).toEqual({ name: n, exported: true });
  });
});
