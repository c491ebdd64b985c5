// The monitoring endpoints (live, ready, health) answer loopback, server.trustedProxies, and
// anyone presenting server.monitoring.accessKey (Bearer or ?access_key=); everyone else gets
// the 404 of a path no route serves. Nothing about them reaches a backend, not even on a
// catch-all route, and the key never does.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { buildGateway, type TestGateway } from "../helpers/gateway.ts";

const KEY = "mon-key-0123456789abcdefXYZ";
const FOREIGN = { remoteAddress: "203.0.113.9" };
const PROXY = { remoteAddress: "10.1.2.3" };

let backend: Server;
let port = 0;
const seen: IncomingMessage[] = [];
let g: TestGateway;

beforeAll(async () => {
  backend = createServer((req, res) => {
    seen.push(req);
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ backend: true }));
  });
  await new Promise<void>((r) => backend.listen(0, "127.0.0.1", r));
  port = (backend.address() as AddressInfo).port;
  g = buildGateway(
    `
server:
  trustedProxies: [10.0.0.0/8]
  monitoring: { accessKey: "\${env:MON_KEY}" }
routes:
  - id: catch-all
    frontend: { domains: [any.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
`,
    { env: { MON_KEY: KEY } },
  );
});
afterAll(async () => {
  g?.close();
  await new Promise<void>((r) => backend.close(() => r()));
});

const PATHS = ["live", "ready", "health"].map((p) => `/.well-known/otoroshi/monitoring/${p}`);

async function expectHidden(res: Response): Promise<void> {
  expect(res.status).toBe(404);
  expect(res.headers.get("otoroshi-error-code")).toBe("ERR_ROUTE_NOT_FOUND");
  expect(await res.json()).toEqual({ "Otoroshi-Error": "No route found" });
}

describe("who may call the monitoring endpoints", () => {
  for (const path of PATHS) {
    test(`loopback: ${path}`, async () => {
      const res = await g.call(`http://any.test${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect(res.headers.get("content-type")).toContain("application/json");
    });
    test(`IPv6 loopback: ${path}`, async () => {
      expect((await g.call(`http://any.test${path}`, {}, { remoteAddress: "::1" })).status).toBe(200);
    });
    test(`a trusted proxy: ${path}`, async () => {
      expect((await g.call(`http://any.test${path}`, {}, PROXY)).status).toBe(200);
    });
    test(`anyone else gets the ordinary 404: ${path}`, async () => {
      await expectHidden(await g.call(`http://any.test${path}`, {}, FOREIGN));
    });
    test(`the access key as a Bearer token lets anyone in: ${path}`, async () => {
      const res = await g.call(`http://any.test${path}`, { headers: { authorization: `Bearer ${KEY}` } }, FOREIGN);
      expect(res.status).toBe(200);
    });
    test(`the access key as ?access_key= lets anyone in: ${path}`, async () => {
      const res = await g.call(`http://any.test${path}?access_key=${encodeURIComponent(KEY)}`, {}, FOREIGN);
      expect(res.status).toBe(200);
    });
    test(`a wrong key, a key prefix or another scheme gets the ordinary 404: ${path}`, async () => {
      const inits: RequestInit[] = [
        { headers: { authorization: `Bearer ${KEY}x` } },
        { headers: { authorization: `Bearer ${KEY.slice(0, -1)}` } },
        { headers: { authorization: `Basic ${KEY}` } },
        { headers: { authorization: KEY } },
        { headers: { "x-access-key": KEY } },
        { headers: { authorization: "Bearer " } },
      ];
      for (const init of inits) await expectHidden(await g.call(`http://any.test${path}`, init, FOREIGN));
      await expectHidden(await g.call(`http://any.test${path}?access_key=nope`, {}, FOREIGN));
      await expectHidden(await g.call(`http://any.test${path}?access_key=`, {}, FOREIGN));
      await expectHidden(await g.call(`http://any.test${path}?ACCESS_KEY=${KEY}`, {}, FOREIGN));
    });
  }

  test("the Bearer scheme name is case-insensitive (RFC 9110 §11.1)", async () => {
    expect((await g.call(`http://any.test${PATHS[0]}`, { headers: { authorization: `bearer ${KEY}` } }, FOREIGN)).status).toBe(200);
  });

  test("every spelling of the path answers alike, and stays hidden alike", async () => {
    for (
      const spelling of [
        "//.well-known/otoroshi/monitoring/ready",
        "/.well-known/otoroshi/%6Donitoring/ready",
        "/.well-known/x/../otoroshi/monitoring/ready",
        "/%2Ewell-known/otoroshi/monitoring/rea%64y",
      ]
    ) {
      const res = await g.call(`http://any.test${spelling}`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { status: string }).status).toBe("ready");
      await expectHidden(await g.call(`http://any.test${spelling}`, {}, FOREIGN));
    }
  });

  test("a method other than GET and HEAD: 405 with Allow for a caller let in, the 404 for others", async () => {
    const res = await g.call(`http://any.test${PATHS[0]}`, { method: "POST", body: "x" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
    await expectHidden(await g.call(`http://any.test${PATHS[0]}`, { method: "DELETE" }, FOREIGN));
  });

  test("nothing about the monitoring endpoints reaches the backend, the key least of all", async () => {
    const before = seen.length;
    for (const path of PATHS) {
      await g.call(`http://any.test${path}`, { headers: { authorization: `Bearer ${KEY}` } }, FOREIGN);
      await g.call(`http://any.test${path}?access_key=${KEY}`, {}, FOREIGN);
      await g.call(`http://any.test${path}?access_key=wrong`, {}, FOREIGN);
      await g.call(`http://any.test${path}`, { method: "PUT", body: "x", headers: { authorization: `Bearer ${KEY}` } }, FOREIGN);
    }
    expect(seen.length).toBe(before);
    // The route itself still works: the catch-all is reached for every other path.
    const res = await g.call("http://any.test/.well-known/otoroshi/monitoring/other", {}, FOREIGN);
    expect(await res.json()).toEqual({ backend: true });
    expect(seen.length).toBe(before + 1);
  });

  test("HEAD gets the status and fields without a body", async () => {
    const res = await g.call(`http://any.test${PATHS[2]}`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.text()).toBe("");
  });
});

describe("without a key, and across reloads", () => {
  test("no key opens the endpoints, not even an empty one", async () => {
    const plain = buildGateway(`
routes:
  - id: r
    frontend: { domains: [any.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
`);
    try {
      expect((await plain.call(`http://any.test${PATHS[1]}`)).status).toBe(200);
      await expectHidden(await plain.call(`http://any.test${PATHS[1]}`, { headers: { authorization: "Bearer " } }, FOREIGN));
      await expectHidden(await plain.call(`http://any.test${PATHS[1]}?access_key=`, {}, FOREIGN));
      await expectHidden(await plain.call(`http://any.test${PATHS[1]}?access_key=undefined`, {}, FOREIGN));
    } finally {
      plain.close();
    }
  });

  // Like every server setting, the key is read at start: a reload warns (config.restart_required)
  // and keeps the running key, so a half-finished rotation never locks the monitoring out.
  test("a reload that changes the key keeps the running one until a restart", async () => {
    const y = (key: string) => `
server:
  monitoring: { accessKey: "${key}" }
`;
    const k1 = "first-key-abcdefghijklmnop";
    const k2 = "second-key-abcdefghijklmnop";
    const r = buildGateway(y(k1));
    try {
      expect((await r.call(`http://any.test${PATHS[0]}?access_key=${k1}`, {}, FOREIGN)).status).toBe(200);
      await r.rewrite(y(k2));
      expect(r.store.current().generation).toBe(2);
      expect((await r.call(`http://any.test${PATHS[0]}?access_key=${k1}`, {}, FOREIGN)).status).toBe(200);
      await expectHidden(await r.call(`http://any.test${PATHS[0]}?access_key=${k2}`, {}, FOREIGN));
    } finally {
      r.close();
    }
  });
});

describe("server.monitoring.accessKey in the config", () => {
  test("a short key or one that cannot be a Bearer token is refused at load, at its position, without its value", () => {
    for (
      const [key, message] of [
        ["short-key-123", "at least 16 characters"],
        ["has spaces in it, quite long", "so it can be sent as a Bearer token"],
      ] as const
    ) {
      let problems: string[] = [];
      try {
        buildGateway(`server:\n  monitoring:\n    accessKey: "${key}"\n`).close();
      } catch (e) {
        problems = (e as { problems: { line: number; path: string; message: string }[] }).problems.map((p) => `${p.line} ${p.path}: ${p.message}`);
      }
      expect(problems.length).toBe(1);
      expect(problems[0]).toStartWith("3 server.monitoring.accessKey: ");
      expect(problems[0]).toContain(message);
      expect(problems[0]).not.toContain(key);
    }
  });
  test("the key may come from ${file:…}, checked after substitution", async () => {
    const key = "file-key-abcdefghijklmnop";
    const g2 = buildGateway(`server:\n  monitoring: { accessKey: "\${file:mon.key}" }\n`, { files: { "mon.key": key + "\n" } });
    try {
      expect((await g2.call(`http://any.test${PATHS[0]}`, { headers: { authorization: `Bearer ${key}` } }, FOREIGN)).status).toBe(200);
    } finally {
      g2.close();
    }
  });
});
