// The reload pipeline in process: Reloader + ConfigStore + the status endpoint, with an injected
// upstream (the answer names the target it was sent to) and an injected clock.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LoadOptions, loadSnapshot } from "../../src/config/load.ts";
import { ParseWorker } from "../../src/config/parse-worker.ts";
import { Reloader } from "../../src/config/reload.ts";
import { ConfigStore } from "../../src/config/store.ts";
import { generateKeyPairPem } from "../../src/keys/generate.ts";
import { getLogLevel, type Level, setLogLevel, setLogSink } from "../../src/log.ts";
import type { UpstreamFetch } from "../../src/runtime/types.ts";
import { basic, buildGateway, type TestGateway } from "../helpers/gateway.ts";

const NOW = Date.parse("2026-06-01T00:00:00Z");

/** The injected backend: answers with the host it was called on, so a test sees which target won. */
const upstream = (): UpstreamFetch => async (url) => Response.json({ url, target: new URL(url).hostname });
const opts = { now: NOW, upstreamFetch: upstream };

/** A route "main" on app.test sending to `target`; more YAML may follow at the top level. */
const cfg = (target: string, more = "") =>
  `routes:
  - id: main
    frontend: { domains: [app.test] }
    backend: { targets: [{ hostname: ${target}, port: 80 }] }
${more}`;

const logs: Record<string, unknown>[] = [];
const gateways: TestGateway[] = [];
let level: Level = "info";

beforeAll(() => {
  level = getLogLevel();
  setLogLevel("debug");
  setLogSink((line) => logs.push(JSON.parse(line) as Record<string, unknown>));
});
afterAll(() => {
  setLogSink((line) => process.stderr.write(line + "\n"));
  setLogLevel(level);
});
afterEach(() => {
  for (const g of gateways.splice(0)) g.close();
  logs.length = 0;
});

function gateway(yaml: string, extra: Parameters<typeof buildGateway>[1] = {}): TestGateway {
  const g = buildGateway(yaml, { ...opts, ...extra });
  gateways.push(g);
  return g;
}

async function targetOf(g: TestGateway, host = "app.test", init: RequestInit = {}): Promise<string | number> {
  const res = await g.call(`http://${host}/x`, init);
  if (res.status !== 200) return res.status;
  return ((await res.json()) as { target: string }).target;
}

async function status(g: TestGateway, remoteAddress = "127.0.0.1") {
  const res = await g.call("http://anything/.well-known/otoroshi/status", {}, { remoteAddress });
  return {
    code: res.status,
    body: res.status === 200
      ? ((await res.json()) as { generation: number; sha256: string; loadedAt: string; lastError: { at: string; problems: { line: number; column: number; path: string; message: string }[] } | null })
      : null,
  };
}

const events = (name: string) => logs.filter((l) => l.event === name);
const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

describe("reload: what is applied", () => {
  test("a changed file is applied, bumps the generation and the status digest is the file's sha256", async () => {
    const g = gateway(cfg("a.backend"));
    expect(await targetOf(g)).toBe("a.backend");
    expect(await g.rewrite(cfg("b.backend"))).toBe("applied");
    expect(await targetOf(g)).toBe("b.backend");
    const s = (await status(g)).body!;
    expect(s.generation).toBe(2);
    expect(s.sha256).toBe(sha256(g.file));
    expect(s.loadedAt).toBe(new Date(NOW).toISOString());
    expect(s.lastError).toBeNull();
    const [ev] = events("config.reloaded");
    expect(ev).toMatchObject({ generation: 2, trigger: "test", routes: 1, apikeys: 0, keypairs: 0, sha256: s.sha256 });
    expect(typeof ev.durationMs).toBe("number");
  });

  test("an unchanged file is skipped: same generation, no config.reloaded event", async () => {
    const g = gateway(cfg("a.backend"));
    expect(await g.reloader.reload("watch:otoroshi.yaml")).toBe("unchanged");
    expect(await g.rewrite(cfg("a.backend"))).toBe("unchanged");
    expect(g.store.current().generation).toBe(1);
    expect(events("config.reloaded")).toHaveLength(0);
  });

  test("a forced reload (SIGHUP) applies even when nothing changed", async () => {
    const g = gateway(cfg("a.backend"));
    expect(await g.reloader.reload("SIGHUP", true)).toBe("applied");
    expect(await g.reloader.reload("SIGHUP", true)).toBe("applied");
    expect(g.store.current().generation).toBe(3);
    expect(events("config.reloaded").map((e) => e.trigger)).toEqual(["SIGHUP", "SIGHUP"]);
  });

  test("a comment-only edit is applied so the status digest always matches the file", async () => {
    const g = gateway(cfg("a.backend"));
    expect(await g.rewrite(`# reviewed\n${cfg("a.backend")}`)).toBe("applied");
    expect((await status(g)).body!.sha256).toBe(sha256(g.file));
  });

  test("a referenced file that changed is applied even when the trigger names the main file", async () => {
    // A Kubernetes ConfigMap swap changes the config's inode and the secret's content at once;
    // the watcher then reports the main file. The main file's bytes did not change.
    const yaml = cfg("a.backend", "apikeys:\n  - clientId: app\n    clientSecret: ${file:secret.txt}\n").replace(
      "backend: { targets",
      "plugins: [{ plugin: Apikeys }]\n    backend: { targets",
    );
    const g = gateway(yaml, { files: { "secret.txt": "old-secret\n" } });
    expect(await targetOf(g, "app.test", { headers: { authorization: basic("app", "old-secret") } })).toBe("a.backend");
    writeFileSync(join(g.dir, "secret.txt"), "new-secret\n");
    expect(await g.reloader.reload("watch:otoroshi.yaml")).toBe("applied");
    expect(await targetOf(g, "app.test", { headers: { authorization: basic("app", "old-secret") } })).toBe(401);
    expect(await targetOf(g, "app.test", { headers: { authorization: basic("app", "new-secret") } })).toBe("a.backend");
    // And the same content again is a no-op.
    expect(await g.reloader.reload("watch:secret.txt")).toBe("unchanged");
  });
});

describe("reload: bad edits", () => {
  test("a rejected edit keeps the old config serving and the status shows lastError with where", async () => {
    const g = gateway(cfg("a.backend"));
    g.clock.now = NOW + 5000;
    const bad = cfg("b.backend", "apikeys:\n  - clientId: app\n    clientSecret: s\n    authorizedEntities: [route_nope]\n    color: blue\n");
    expect(await g.rewrite(bad)).toBe("rejected");
    expect(await targetOf(g)).toBe("a.backend");
    const s = (await status(g)).body!;
    expect(s.generation).toBe(1);
    expect(s.sha256).not.toBe(sha256(g.file));
    expect(s.lastError).toEqual({
      at: new Date(NOW + 5000).toISOString(),
      problems: [{ line: 9, column: 5, path: "apikeys[0].color", message: expect.stringContaining('unknown key "color"') }],
    });
  });

  test("every problem of a rejected edit is reported with file:line:col", async () => {
    const g = gateway(cfg("a.backend"));
    const bad = `routes:
  - id: main
    frontend: { domains: [app.test] }
    backend: { targets: [{ hostname: a.backend, port: 80 }] }
    timeout: 5
apikeys:
  - clientId: app
    clientSecret: s
    authorizedEntities: [route_main, 42x]
`;
    expect(await g.rewrite(bad)).toBe("rejected");
    const rejected = events("config.rejected");
    expect(rejected.map((e) => e.location)).toEqual([
      `${g.file}:5:5 routes[0].timeout: unknown key "timeout" (allowed: id, name, enabled, groups, frontend, backend, plugins)`,
      expect.stringMatching(new RegExp(`^${g.file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:9:38 apikeys\\[0\\]\\.authorizedEntities\\[1\\]: `)),
    ]);
    expect(rejected.every((e) => e.level === "error" && e.generation === 1)).toBe(true);
    const s = (await status(g)).body!;
    expect(s.lastError!.problems.map((p) => [p.line, p.column, p.path])).toEqual([
      [5, 5, "routes[0].timeout"],
      [9, 38, "apikeys[0].authorizedEntities[1]"],
    ]);
  });

  test("the next good save after a rejected one is applied and clears lastError", async () => {
    const g = gateway(cfg("a.backend"));
    expect(await g.rewrite("routes: [")).toBe("rejected");
    expect((await status(g)).body!.lastError!.problems[0]).toMatchObject({ line: 1 });
    expect(await g.rewrite(cfg("b.backend"))).toBe("applied");
    const s = (await status(g)).body!;
    expect(s.lastError).toBeNull();
    expect(s.generation).toBe(2);
    expect(await targetOf(g)).toBe("b.backend");
  });

  test("reverting a rejected edit to the running content clears lastError without a new generation", async () => {
    const g = gateway(cfg("a.backend"));
    expect(await g.rewrite("")).toBe("rejected");
    expect((await status(g)).body!.lastError).not.toBeNull();
    expect(await g.rewrite(cfg("a.backend"))).toBe("unchanged");
    const s = (await status(g)).body!;
    expect(s.lastError).toBeNull();
    expect(s.generation).toBe(1);
  });
});

describe("reload: ordering", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const snapshotOf = (yaml: string, generation: number) => {
    const dir = mkdtempSync(join(tmpdir(), "oto-order-"));
    dirs.push(dir);
    const file = join(dir, "otoroshi.yaml");
    writeFileSync(file, yaml);
    const lo: LoadOptions = { env: {}, clock: () => NOW, upstreamFetch: upstream };
    return loadSnapshot(file, generation, lo).snapshot;
  };
  const problem = [{ file: "f", line: 3, column: 4, path: "routes", message: "bad" }];

  test("a slower, older reload never overwrites the snapshot of a newer one", () => {
    const store = new ConfigStore(snapshotOf(cfg("v0"), 1));
    const older = snapshotOf(cfg("v1"), 2);
    const newer = snapshotOf(cfg("v2"), 3);
    // Reload 2 started after reload 1 but finished first.
    expect(store.swap(newer, 2)).toBe(true);
    expect(store.swap(older, 1)).toBe(false);
    expect(store.current()).toBe(newer);
  });

  test("an older rejection arriving after a newer apply does not set lastError", () => {
    const store = new ConfigStore(snapshotOf(cfg("v0"), 1));
    expect(store.swap(snapshotOf(cfg("v2"), 2), 2)).toBe(true);
    store.reject(problem, 1, new Date(NOW).toISOString());
    expect(store.lastError).toBeNull();
  });

  test("an older valid reload still applies after a newer one was rejected, and the newer error stays", () => {
    // Saved in order: v1 (valid), then v2 (broken). Run one after the other, v1 serves and v2 is
    // the last error; overlapping must not end differently.
    const store = new ConfigStore(snapshotOf(cfg("v0"), 1));
    store.reject(problem, 2, new Date(NOW).toISOString());
    const v1 = snapshotOf(cfg("v1"), 2);
    expect(store.swap(v1, 1)).toBe(true);
    expect(store.current()).toBe(v1);
    expect(store.lastError?.problems).toEqual([{ line: 3, column: 4, path: "routes", message: "bad" }]);
    // A newer apply clears it.
    expect(store.swap(snapshotOf(cfg("v3"), 3), 3)).toBe(true);
    expect(store.lastError).toBeNull();
  });

  // Through the Reloader: calls made while a reload runs are queued and read the file when
  // their turn comes, so they end as a one-at-a-time run would.
  test("two reloads started back to back end on the newest file", async () => {
    const g = gateway(cfg("v0"));
    writeFileSync(g.file, cfg("v1"));
    const first = g.reloader.reload("watch:otoroshi.yaml");
    writeFileSync(g.file, cfg("v2"));
    const second = g.reloader.reload("watch:otoroshi.yaml");
    expect(await Promise.all([first, second])).toEqual(["applied", "applied"]);
    expect(await targetOf(g)).toBe("v2");
    expect(g.store.current().generation).toBe(3);
  });

  test("a valid save then a broken one, reloaded back to back: the valid one serves, the broken one is reported", async () => {
    const g = gateway(cfg("v0"));
    writeFileSync(g.file, cfg("v1"));
    const first = g.reloader.reload("watch:otoroshi.yaml");
    writeFileSync(g.file, cfg("v2", "bogus: 1\n"));
    const second = g.reloader.reload("watch:otoroshi.yaml");
    expect(await Promise.all([first, second])).toEqual(["applied", "rejected"]);
    expect(await targetOf(g)).toBe("v1");
    expect((await status(g)).body!.lastError!.problems[0]).toMatchObject({ line: 5, column: 1, path: "bogus" });
  });

  test("a save that reverts to the running config while a reload runs is what ends up serving", async () => {
    const g = gateway(cfg("v0"));
    writeFileSync(g.file, cfg("v1"));
    const first = g.reloader.reload("watch:otoroshi.yaml");
    writeFileSync(g.file, cfg("v0"));
    const second = g.reloader.reload("watch:otoroshi.yaml");
    await Promise.all([first, second]);
    expect(await targetOf(g)).toBe("v0");
    expect(g.store.current().sha256).toBe(sha256(g.file));
  });

  test("triggers that arrive during a reload share one more reload", async () => {
    const g = gateway(cfg("v0"));
    writeFileSync(g.file, cfg("v1"));
    const first = g.reloader.reload("watch:otoroshi.yaml");
    const burst: Promise<string>[] = [];
    for (let i = 2; i <= 6; i++) {
      writeFileSync(g.file, cfg(`v${i}`));
      burst.push(g.reloader.reload("watch:otoroshi.yaml"));
    }
    expect(new Set(burst).size).toBe(1);
    expect(await first).toBe("applied");
    expect(await burst[0]).toBe("applied");
    expect(await targetOf(g)).toBe("v6");
    expect(events("config.reloaded").map((e) => e.generation)).toEqual([2, 3]);
  });

  test("a SIGHUP that arrives during a reload is not lost: the shared reload is forced", async () => {
    const g = gateway(cfg("v0"));
    writeFileSync(g.file, cfg("v1"));
    const first = g.reloader.reload("watch:otoroshi.yaml");
    const watch = g.reloader.reload("watch:otoroshi.yaml"); // nothing changed after v1
    const hup = g.reloader.reload("SIGHUP", true);
    expect(hup).toBe(watch);
    expect(await first).toBe("applied");
    expect(await hup).toBe("applied");
    expect(events("config.reloaded").map((e) => e.trigger)).toEqual(["watch:otoroshi.yaml", "SIGHUP"]);
    expect(g.store.current().generation).toBe(3);
  });
});

describe("reload: static server settings", () => {
  test("a server change is reported as restart required and not applied; the rest of the edit is", async () => {
    const g = gateway(cfg("a.backend"));
    const next = `server:\n  port: 9999\n  idleTimeout: 7\n${cfg("b.backend")}  - id: extra\n    frontend: { domains: [extra.test] }\n    backend: { targets: [{ hostname: c.backend }] }\n`;
    expect(await g.rewrite(next)).toBe("applied");
    const [rr] = events("config.restart_required");
    expect(rr).toMatchObject({ level: "warn", changed: ["server.port", "server.idleTimeout"] });
    const server = g.store.current().config.server;
    expect(server.port).toBe(8080);
    expect(server.idleTimeout).toBe(30);
    expect(await targetOf(g)).toBe("b.backend");
    expect(await targetOf(g, "extra.test")).toBe("c.backend");
    expect(g.store.current().generation).toBe(2);
  });

  test("a rejected edit with a server change does not report restart required", async () => {
    const g = gateway(cfg("a.backend"));
    // Rejected while compiling (key import), after the server section was read.
    expect(await g.rewrite(`server:\n  port: 9999\n${cfg("b.backend")}keypairs:\n  - id: k1\n    privateKey: not a key\n`)).toBe("rejected");
    expect(events("config.rejected")[0]).toMatchObject({ line: 9, column: 17, path: "keypairs[0].privateKey" });
    expect(events("config.restart_required")).toHaveLength(0);
  });
});

describe("reload: live changes", () => {
  const ec = generateKeyPairPem("ES256").privateKeyPem;
  const ec2 = generateKeyPairPem("ES256").privateKeyPem;
  const pem = (p: string) => p.trimEnd().split("\n").map((l) => `      ${l}`).join("\n");
  const keyed = (o: { keys: string; kp: string; pairs: [string, string][] }) =>
    `plugins:
  - plugin: ClientCredentialService
    config: { domain: oauth.test, secure: false, defaultKeyPair: ${o.kp} }
routes:
  - id: main
    frontend: { domains: [app.test] }
    backend: { targets: [{ hostname: a.backend }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
${o.keys}
keypairs:
${o.pairs.map(([id, p]) => `  - id: ${id}\n    privateKey: |\n${pem(p)}`).join("\n")}
`;
  const app = "  - clientId: app\n    clientSecret: s1\n";
  const other = (enabled: boolean) => `  - clientId: other\n    clientSecret: s2\n    enabled: ${enabled}\n`;

  async function token(g: TestGateway, id: string, secret: string): Promise<string> {
    const res = await g.call("http://oauth.test/.well-known/otoroshi/oauth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "client_credentials", client_id: id, client_secret: secret }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { access_token: string }).access_token;
  }
  const kids = async (g: TestGateway) => ((await (await g.call("http://oauth.test/.well-known/otoroshi/oauth/jwks.json")).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
  const as = (h: string) => ({ headers: { authorization: h } });

  test("a removed or disabled API key, and the tokens of a removed one, are refused by the next request", async () => {
    const g = gateway(keyed({ keys: app + other(true), kp: "k1", pairs: [["k1", ec]] }));
    const jwt = await token(g, "app", "s1");
    expect(await targetOf(g, "app.test", as(basic("app", "s1")))).toBe("a.backend");
    expect(await targetOf(g, "app.test", as(basic("other", "s2")))).toBe("a.backend");
    expect(await targetOf(g, "app.test", as(`Bearer ${jwt}`))).toBe("a.backend");
    expect(await g.rewrite(keyed({ keys: other(false), kp: "k1", pairs: [["k1", ec]] }))).toBe("applied");
    expect(await targetOf(g, "app.test", as(basic("app", "s1")))).toBe(401);
    expect(await targetOf(g, "app.test", as(basic("other", "s2")))).toBe(401);
    expect(await targetOf(g, "app.test", as(`Bearer ${jwt}`))).toBe(401);
  });

  test("a new key pair appears in the JWKS and a removed one no longer verifies", async () => {
    const g = gateway(keyed({ keys: app, kp: "k1", pairs: [["k1", ec]] }));
    const old = await token(g, "app", "s1");
    expect(await kids(g)).toEqual(["k1"]);
    expect(await g.rewrite(keyed({ keys: app, kp: "k2", pairs: [["k2", ec2]] }))).toBe("applied");
    expect(await kids(g)).toEqual(["k2"]);
    expect(await targetOf(g, "app.test", as(`Bearer ${old}`))).toBe(401);
    expect(await targetOf(g, "app.test", as(`Bearer ${await token(g, "app", "s1")}`))).toBe("a.backend");
    expect(events("config.reloaded")[0]).toMatchObject({ apikeys: 1, keypairs: 1 });
  });

  test("rotating the signing key with previousKeyPairs keeps old tokens valid until the old key is dropped", async () => {
    const rotating = (kp: string, previous: string[], pairs: [string, string][]) =>
      keyed({ keys: app, kp, pairs }).replace(`defaultKeyPair: ${kp} }`, `defaultKeyPair: ${kp}, previousKeyPairs: [${previous.join(", ")}] }`);
    const g = gateway(rotating("k1", [], [["k1", ec]]));
    const old = await token(g, "app", "s1");
    expect(await g.rewrite(rotating("k2", ["k1"], [["k1", ec], ["k2", ec2]]))).toBe("applied");
    expect(await kids(g)).toEqual(["k1", "k2"]);
    const fresh = await token(g, "app", "s1");
    expect(JSON.parse(Buffer.from(fresh.split(".")[0], "base64url").toString()).kid).toBe("k2");
    expect(await targetOf(g, "app.test", as(`Bearer ${old}`))).toBe("a.backend");
    expect(await targetOf(g, "app.test", as(`Bearer ${fresh}`))).toBe("a.backend");
    expect(await g.rewrite(rotating("k2", [], [["k2", ec2]]))).toBe("applied");
    expect(await kids(g)).toEqual(["k2"]);
    expect(await targetOf(g, "app.test", as(`Bearer ${old}`))).toBe(401);
    expect(await targetOf(g, "app.test", as(`Bearer ${fresh}`))).toBe("a.backend");
  });

  test("a new route appears and a removed one is gone", async () => {
    const g = gateway(cfg("a.backend"));
    expect(await targetOf(g, "new.test")).toBe(404);
    await g.rewrite(cfg("a.backend").replace("app.test", "new.test"));
    expect(await targetOf(g, "new.test")).toBe("a.backend");
    expect(await targetOf(g, "app.test")).toBe(404);
  });
});

describe("status endpoint access", () => {
  const yaml = `server:\n  trustedProxies: [10.9.0.0/16, "fd00::/8"]\n${cfg("a.backend")}`;

  test("answers loopback peers and trusted proxies, and is a 404 to anyone else", async () => {
    const g = gateway(yaml);
    expect((await status(g, "127.0.0.1")).code).toBe(200);
    expect((await status(g, "::1")).code).toBe(200);
    expect((await status(g, "10.9.1.1")).code).toBe(200);
    expect((await status(g, "fd00::1")).code).toBe(200);
    for (const peer of ["10.1.2.3", "192.168.1.10", "2001:db8::1"]) {
      const res = await g.call("http://anything/.well-known/otoroshi/status", {}, { remoteAddress: peer });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ "Otoroshi-Error": "No route found" });
    }
  });
});

// ---------------------------------------------------------------- issue 8, item 4

describe("reload: size limit, and never a parse on the thread that serves requests", () => {
  const workerFrom = (name: string) => () => new Worker(new URL(`../fixtures/workers/${name}.ts`, import.meta.url).href, { type: "module" });
  const realWorker = () => new Worker(new URL("../../src/config/reload-worker.ts", import.meta.url).href, { type: "module" });

  test("a file larger than the running server.maxConfigSize is refused before it is parsed, at 1:1", async () => {
    const g = gateway(cfg("a.internal", "server:\n  maxConfigSize: 2048\n"));
    writeFileSync(g.file, cfg("b.internal", `server:\n  maxConfigSize: 1048576\n# ${"x".repeat(4000)}\n`));
    expect(await g.reloader.reload("test")).toBe("rejected");
    const s = (await status(g)).body!;
    expect(s.lastError!.problems).toEqual([{
      line: 1,
      column: 1,
      path: "",
      message: expect.stringMatching(/^the file is \d+ bytes, more than server\.maxConfigSize \(2048 bytes\); it was not parsed$/),
    }]);
    expect(await targetOf(g)).toBe("a.internal");
    // The limit a reload uses is the running one: raising it in the file itself needs a restart.
    expect(s.generation).toBe(1);
  });

  test("a file larger than the limit it sets for itself is refused as start and check refuse it", async () => {
    const g = gateway(cfg("a.internal"));
    writeFileSync(g.file, cfg("b.internal", `server:\n  maxConfigSize: 1024\n# ${"x".repeat(2000)}\n`));
    expect(await g.reloader.reload("test")).toBe("rejected");
    const p = (await status(g)).body!.lastError!.problems;
    expect(p).toEqual([{ line: 6, column: 18, path: "server.maxConfigSize", message: expect.stringMatching(/^the file is \d+ bytes, more than the limit set here$/) }]);
  });

  test("a worker that never answers: the reload is refused with a clear problem, the old config serves, the next reload gets a new worker", async () => {
    const made: string[] = [];
    const worker = new ParseWorker(300, () => {
      made.push(made.length === 0 ? "hang" : "real");
      return made.length === 1 ? workerFrom("hang")() : realWorker();
    });
    const g = gateway(cfg("a.internal"));
    const store = g.store;
    const r = new Reloader(g.file, store, { env: {}, clock: () => NOW, upstreamFetch: upstream }, "x", worker);
    // The thread that serves requests keeps running while the reload waits on the worker.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      writeFileSync(g.file, cfg("b.internal"));
      expect(await r.reload("test")).toBe("rejected");
      expect(ticks).toBeGreaterThan(5);
      expect(store.lastError!.problems).toEqual([
        {
          line: 1,
          column: 1,
          path: "",
          message:
            "the reload was not applied: the reload worker gave no answer within 0.3 s (is the file unusually large? server.maxConfigSize limits it); the running config is kept, and the next reload uses a new worker",
        },
      ]);
      expect(await targetOf(g)).toBe("a.internal");
      expect(logs.some((l) => l.event === "config.worker_failed")).toBe(true);
      // Replaced at once: the next reload is parsed by the new worker and applied.
      expect(made).toEqual(["hang", "real"]);
      expect(await r.reload("test")).toBe("applied");
      expect(await targetOf(g)).toBe("b.internal");
      expect(logs.find((l) => l.event === "config.reloaded")).toMatchObject({ parser: "worker" });
    } finally {
      clearInterval(timer);
      worker.stop();
    }
  });

  test("a worker that crashes: the reload is refused, and the next one is applied by its replacement", async () => {
    let n = 0;
    const worker = new ParseWorker(10_000, () => (n++ === 0 ? workerFrom("crash")() : realWorker()));
    const g = gateway(cfg("a.internal"));
    const r = new Reloader(g.file, g.store, { env: {}, clock: () => NOW, upstreamFetch: upstream }, "x", worker);
    try {
      writeFileSync(g.file, cfg("b.internal"));
      expect(await r.reload("test")).toBe("rejected");
      expect(g.store.lastError!.problems[0]!.message).toBe("the reload was not applied: the reload worker stopped with an error; the running config is kept, and the next reload uses a new worker");
      expect(await targetOf(g)).toBe("a.internal");
      expect(await r.reload("test")).toBe("applied");
      expect(await targetOf(g)).toBe("b.internal");
      expect(n).toBe(2);
    } finally {
      worker.stop();
    }
  });

  test("a worker that cannot start: every reload is refused (none is parsed here), each tries a new one", async () => {
    let n = 0;
    const worker = new ParseWorker(10_000, () => {
      n++;
      throw new Error("no worker support");
    });
    const g = gateway(cfg("a.internal"));
    const r = new Reloader(g.file, g.store, { env: {}, clock: () => NOW, upstreamFetch: upstream }, "x", worker);
    writeFileSync(g.file, cfg("b.internal"));
    expect(await r.reload("test")).toBe("rejected");
    expect(g.store.lastError!.problems[0]!.message).toBe("the reload was not applied: the reload worker cannot start; the running config is kept, and the next reload uses a new worker");
    expect(await r.reload("test")).toBe("rejected");
    expect(n).toBe(3); // the Reloader's own start, then one per reload
    expect(await targetOf(g)).toBe("a.internal");
  });

  test("an 80,000-key mapping is refused with the first 100 problems and a count of the rest", async () => {
    const g = gateway(cfg("a.internal"));
    const lines: string[] = [cfg("b.internal")];
    for (let i = 0; i < 80_000; i++) lines.push(`k${i}: v${i}\n`);
    writeFileSync(g.file, lines.join(""));
    expect(await g.reloader.reload("test")).toBe("rejected");
    const p = (await status(g)).body!.lastError!.problems;
    expect(p.length).toBe(101);
    expect(p[0]).toEqual({ line: 5, column: 1, path: "k0", message: 'unknown key "k0" (allowed: server, plugins, routes, apikeys, keypairs)' });
    expect(p[100]!.message).toBe("… and 79900 more problems (`otoroshi-lite check` lists them all)");
    expect(logs.filter((l) => l.event === "config.rejected").length).toBe(101);
    expect(await targetOf(g)).toBe("a.internal");
  }, 60_000);

  test("duplicate keys among 40,000 are each reported with file:line:col", async () => {
    const g = gateway(cfg("a.internal"));
    const meta: string[] = [];
    for (let i = 0; i < 40_000; i++) meta.push(`      k${i % 20_000}: v\n`);
    writeFileSync(g.file, `${cfg("b.internal")}apikeys:\n  - clientId: a\n    clientSecret: s\n    metadata:\n${meta.join("")}`);
    expect(await g.reloader.reload("test")).toBe("rejected");
    const p = (await status(g)).body!.lastError!.problems;
    expect(p[0]).toEqual({ line: 20_009, column: 7, path: "apikeys[0].metadata.k0", message: "duplicate key (first at line 9, column 7)" });
    expect(p[100]!.message).toBe("… and 19900 more problems (`otoroshi-lite check` lists them all)");
  }, 60_000);
});
