// `otoroshi-lite explain` on the real binary and Deno (OTOROSHI_E2E_RUNTIME), against the
// configs of tests/integration/routing.test.ts and apikeys.test.ts. The backends are a host name
// that cannot resolve (RFC 6761 .invalid) on a port nothing listens on, a listener that counts
// every connection made to it, and a Redis URL pointing at that listener: any attempt to call a
// backend would show as a 502 or a counted connection, so the answers prove nothing was sent.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { recordConfig } from "../helpers/secrets.ts";
import { runCli } from "./process.ts";

const TIMEOUT = 60_000;
const SECRET = "s3cret+/=:x";
const basic = (id: string, secret: string) => "Basic " + Buffer.from(`${id}:${secret}`).toString("base64");

let counter: Server;
let connections = 0;
let counted = 0;
let closed = 0;
let dir: string;
let routing: string;
let apikeys: string;

const routingYaml = (p: number, c: number) => `
server:
  store: redis://127.0.0.1:${c}
  storeUnavailable: closed
routes:
  - id: exact
    frontend: { domains: [api.example.com] }
    backend: { targets: [{ hostname: backend.invalid, port: ${p} }] }
  - id: api-v1
    frontend: { domains: [api.example.com/v1] }
    backend: { targets: [{ hostname: backend.invalid, port: ${p} }], root: /base }
  - id: keep-path
    frontend: { domains: [api.example.com/keep], stripPath: false }
    backend: { targets: [{ hostname: backend.invalid, port: ${p} }] }
  - id: wild
    frontend: { domains: ["*.example.com"] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${c} }] }
  - id: wild-deeper
    frontend: { domains: ["*.eu.example.com"] }
    backend: { targets: [{ hostname: backend.invalid, port: ${p} }] }
  - id: methods
    frontend: { domains: [m.test], methods: [GET, POST] }
    backend: { targets: [{ hostname: backend.invalid, port: ${p} }] }
  - id: host-kept
    frontend: { domains: [keep-host.test] }
    backend: { targets: [{ hostname: backend.invalid, port: ${p} }], preserveHost: true }
`;

const apikeysYaml = (p: number) => `
routes:
  - id: private
    frontend: { domains: [api.test] }
    backend: { targets: [{ hostname: backend.invalid, port: ${p} }] }
    plugins:
      - plugin: Apikeys
  - id: partners
    groups: [partners]
    frontend: { domains: [partners.test] }
    backend: { targets: [{ hostname: backend.invalid, port: ${p} }] }
    plugins:
      - plugin: Apikeys
  - id: keep
    frontend: { domains: [keep.test] }
    backend: { targets: [{ hostname: backend.invalid, port: ${p} }] }
    plugins:
      - plugin: Apikeys
        config: { wipeBackendRequest: false }
  - id: optional
    frontend: { domains: [optional.test] }
    backend: { targets: [{ hostname: backend.invalid, port: ${p} }] }
    plugins:
      - plugin: Apikeys
        config: { mandatory: false }
apikeys:
  - clientId: app1
    clientSecret: "${SECRET}"
  - clientId: partner
    clientSecret: partner-secret
    authorizedEntities: [group_partners, route_private]
  - clientId: reader
    clientSecret: reader-secret
    readOnly: true
`;

beforeAll(async () => {
  counter = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => counter.listen(0, "127.0.0.1", r));
  counted = (counter.address() as AddressInfo).port;
  // A port that was just free: nothing listens on it.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  closed = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  dir = mkdtempSync(join(tmpdir(), "oto-explain-"));
  routing = join(dir, "routing.yaml");
  apikeys = join(dir, "apikeys.yaml");
  writeFileSync(routing, routingYaml(closed, counted));
  writeFileSync(apikeys, apikeysYaml(closed));
  recordConfig(routingYaml(closed, counted), {});
  recordConfig(apikeysYaml(closed), {});
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await new Promise<void>((r) => counter.close(() => r()));
});

interface Answer {
  route: string | null;
  endpoint: string | null;
  status: number | null;
  error: { code: string; message: string; headers: Record<string, string> } | null;
  clientId: string | null;
  method: string | null;
  target: string | null;
  headers: Record<string, string> | null;
  decisions: { plugin: string; decision: string; clientId?: string; status?: number; error?: string }[];
}

async function explainJson(file: string, ...args: string[]): Promise<Answer & { stdout: string }> {
  const r = await runCli(["explain", "--config", file, "--json", ...args]);
  if (r.code !== 0) throw new Error(`explain exited ${r.code}: ${r.stderr}`);
  return { ...(JSON.parse(r.stdout) as Answer), stdout: r.stdout };
}

describe("explain: routing (the configs of routing.test.ts)", () => {
  test(
    "the route, root and stripPath, canonical path and query give the exact backend URL and headers",
    async () => {
      const a = await explainJson(routing, "GET", "http://api.example.com/v1/./users//x/../me?x=1&y=%20");
      expect(a.route).toBe("api-v1");
      expect(a.status).toBeNull();
      expect(a.error).toBeNull();
      expect(a.clientId).toBeNull();
      expect(a.decisions).toEqual([]);
      expect(a.method).toBe("GET");
      expect(a.target).toBe(`http://backend.invalid:${closed}/base/users/me?x=1&y=%20`);
      expect(a.headers!.host).toBe(`backend.invalid:${closed}`);
      expect(a.headers!["x-forwarded-for"]).toBe("192.0.2.1");
      expect(a.headers!["x-forwarded-host"]).toBe("api.example.com");
      expect(a.headers!["x-forwarded-proto"]).toBe("http");
      const keep = await explainJson(routing, "POST", "http://api.example.com/keep/a");
      expect([keep.route, keep.method, keep.target]).toEqual(["keep-path", "POST", `http://backend.invalid:${closed}/keep/a`]);
      const wild = await explainJson(routing, "GET", "http://x.eu.example.com/");
      expect(wild.route).toBe("wild-deeper");
      // The URL is read as curl reads it (WHATWG: host lower-cased, dot segments resolved).
      const host = await explainJson(routing, "GET", "http://Keep-Host.test:8080/p", "--from", "203.0.113.7");
      expect(host.route).toBe("host-kept");
      expect(host.headers!.host).toBe("keep-host.test:8080");
      expect(host.headers!["x-forwarded-for"]).toBe("203.0.113.7");
    },
    TIMEOUT,
  );

  test(
    "refusals: 404 without a route, 405 with Allow, 400 for a path with no canonical form (the handler's own answers)",
    async () => {
      const none = await explainJson(routing, "GET", "http://nothing.test/");
      expect(none).toMatchObject({ route: null, status: 404, target: null, headers: null, error: { code: "ERR_ROUTE_NOT_FOUND", message: "No route found" } });
      const method = await explainJson(routing, "DELETE", "http://m.test/x");
      expect(method).toMatchObject({ status: 405, target: null, error: { code: "ERR_METHOD_NOT_ALLOWED", headers: { allow: "GET, POST" } } });
      const bad = await explainJson(routing, "GET", "http://api.example.com/a%00b");
      expect(bad).toMatchObject({ route: null, status: 400, target: null, error: { code: "ERR_BAD_REQUEST" } });
    },
    TIMEOUT,
  );

  test(
    "nothing is sent: no connection to the counting backend nor to the Redis store it stands for",
    async () => {
      const a = await explainJson(routing, "GET", "http://a.example.com/counted");
      expect(a.route).toBe("wild");
      expect(a.target).toBe(`http://127.0.0.1:${counted}/counted`);
      // A backend that cannot resolve, on a closed port, is still explained as proxied: no
      // attempt was made, or it would be a 502.
      const b = await explainJson(routing, "GET", "http://api.example.com/x");
      expect([b.status, b.target]).toEqual([null, `http://backend.invalid:${closed}/x`]);
      expect(connections).toBe(0);
    },
    TIMEOUT,
  );
});

describe("explain: API keys (the configs of apikeys.test.ts)", () => {
  test(
    "401 without a key and with a wrong one; each plugin's decision; nothing about the secret",
    async () => {
      const missing = await explainJson(apikeys, "GET", "http://api.test/");
      expect(missing).toMatchObject({
        route: "private",
        status: 401,
        clientId: null,
        error: { code: "ERR_APIKEY_MISSING" },
        decisions: [{ plugin: "Apikeys", decision: "refuse", status: 401, error: "ERR_APIKEY_MISSING" }],
      });
      expect(missing.error!.headers["www-authenticate"]).toContain("Basic");
      const wrong = await explainJson(apikeys, "GET", "http://api.test/", "-H", `Authorization: ${basic("app1", "wrong-secret")}`);
      expect(wrong).toMatchObject({ status: 401, error: { code: "ERR_APIKEY_INVALID" } });
      expect(wrong.stdout).not.toContain("wrong-secret");
      expect(wrong.stdout).not.toContain(basic("app1", "wrong-secret").slice(6));
    },
    TIMEOUT,
  );

  test(
    "403 for a key not authorized on the route and for a read-only key writing, naming the client",
    async () => {
      const unauthorized = await explainJson(apikeys, "GET", "http://partners.test/", "-H", `Authorization: ${basic("app1", SECRET)}`);
      expect(unauthorized).toMatchObject({ route: "partners", status: 403, clientId: "app1", error: { code: "ERR_APIKEY_UNAUTHORIZED" } });
      const reader = await explainJson(apikeys, "DELETE", "http://api.test/x", "-H", `Authorization: ${basic("reader", "reader-secret")}`);
      expect(reader).toMatchObject({ status: 403, clientId: "reader", error: { code: "ERR_FORBIDDEN" } });
    },
    TIMEOUT,
  );

  test(
    "an admitted call: client id, credentials wiped as the backend would see them, every other secret masked",
    async () => {
      const ok = await explainJson(
        apikeys,
        "GET",
        `http://api.test/items?page=2&access_token=tok-123456789`,
        "-H",
        `Authorization: ${basic("app1", SECRET)}`,
        "-H",
        "Cookie: sid=session-value-42; theme=dark",
      );
      expect(ok).toMatchObject({ route: "private", status: null, clientId: "app1", decisions: [{ plugin: "Apikeys", decision: "allow", clientId: "app1" }] });
      // The Basic credentials are wiped; the rest is masked.
      expect(ok.target).toBe(`http://backend.invalid:${closed}/items?page=2&access_token=****`);
      expect(ok.headers!.authorization).toBeUndefined();
      expect(ok.headers!["otoroshi-authenticated-client-id"]).toBe("app1");
      expect(ok.headers!.cookie).toBe("sid=****; theme=****");
      for (const secret of [SECRET, Buffer.from(`app1:${SECRET}`).toString("base64"), "tok-123456789", "session-value-42"]) expect(ok.stdout).not.toContain(secret);

      // wipeBackendRequest: false: the backend would get Authorization itself, shown masked.
      const kept = await explainJson(apikeys, "GET", "http://keep.test/", "-H", `Authorization: ${basic("app1", SECRET)}`);
      expect(kept.headers!.authorization).toBe("Basic ****");
      expect(kept.stdout).not.toContain(Buffer.from(`app1:${SECRET}`).toString("base64"));

      // Credentials in the query: wiped from the backend URL when the plugin wipes, masked when not.
      const b64 = Buffer.from(`app1:${SECRET}`).toString("base64");
      const inQuery = await explainJson(apikeys, "GET", `http://api.test/q?a=1&basic_auth=${encodeURIComponent(b64)}&z=2`);
      expect([inQuery.clientId, inQuery.target]).toEqual(["app1", `http://backend.invalid:${closed}/q?a=1&z=2`]);
      const keptQuery = await explainJson(apikeys, "GET", `http://keep.test/q?basic_auth=${encodeURIComponent(b64)}&z=2`);
      expect([keptQuery.clientId, keptQuery.target]).toEqual(["app1", `http://backend.invalid:${closed}/q?basic_auth=****&z=2`]);
      for (const out of [inQuery.stdout, keptQuery.stdout]) expect(out).not.toContain(encodeURIComponent(b64));

      const anonymous = await explainJson(apikeys, "GET", "http://optional.test/");
      expect(anonymous).toMatchObject({ route: "optional", status: null, clientId: null, decisions: [{ plugin: "Apikeys", decision: "pass" }] });
    },
    TIMEOUT,
  );

  test(
    "the human form says the same, and masks the same",
    async () => {
      const r = await runCli(["explain", "--config", apikeys, "GET", "http://api.test/a?b=1", "-H", `Authorization: ${basic("app1", SECRET)}`]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("route      private");
      expect(r.stdout).toContain("plugin     Apikeys: allow (client id app1)");
      expect(r.stdout).toContain(`backend    GET http://backend.invalid:${closed}/a?b=1`);
      expect(r.stdout).not.toContain(Buffer.from(`app1:${SECRET}`).toString("base64"));
      const refused = await runCli(["explain", "--config", apikeys, "POST", "http://api.test/a"]);
      expect(refused.code).toBe(0);
      expect(refused.stdout).toContain('refused: 401 ERR_APIKEY_MISSING "No ApiKey provided"');
    },
    TIMEOUT,
  );
});

describe("explain: exit codes", () => {
  test(
    "1 with every config problem as check prints it; 2 for a usage error",
    async () => {
      const broken = join(dir, "broken.yaml");
      writeFileSync(broken, "routes:\n  - id: x\n    frontend: { domains: [a.test] }\n    backend: { targets: [{ hostname: h, port: 99999 }] }\n");
      const r = await runCli(["explain", "--config", broken, "GET", "http://a.test/"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/broken\.yaml:4:\d+ routes\[0\]\.backend\.targets\[0\]\.port: /);
      expect(r.stdout).toBe("");
      for (
        const args of [
          ["GET"],
          ["GET", "not a url"],
          ["GET", "ftp://a.test/"],
          ["G ET", "http://a.test/"],
          ["GET", "http://a.test/", "-H", "no colon"],
          ["GET", "http://a.test/", "--from", "nowhere"],
          ["GET", "http://a.test/", "extra"],
        ]
      ) {
        const u = await runCli(["explain", "--config", apikeys, ...args]);
        expect(u.code).toBe(2);
        expect(u.stderr).toContain("explain");
      }
    },
    TIMEOUT,
  );
});
