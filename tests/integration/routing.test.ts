import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { buildGateway, type TestGateway } from "../helpers/gateway.ts";

let a: EchoBackend;
let b: EchoBackend;
let gw: TestGateway;

const yaml = (pa: number, pb: number) => `
routes:
  - id: exact
    frontend: { domains: [api.example.com] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${pa} }] }
  - id: api-v1
    frontend: { domains: [api.example.com/v1] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${pa} }], root: /base }
  - id: keep-path
    frontend: { domains: [api.example.com/keep], stripPath: false }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${pa} }] }
  - id: wild
    frontend: { domains: ["*.example.com"] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${pb} }] }
  - id: wild-deeper
    frontend: { domains: ["*.eu.example.com"] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${pa} }] }
  - id: methods
    frontend: { domains: [m.test], methods: [GET, POST] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${pa} }] }
  - id: host-kept
    frontend: { domains: [keep-host.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${pa} }], preserveHost: true }
  - id: balanced
    frontend: { domains: [lb.test] }
    backend:
      targets:
        - { hostname: 127.0.0.1, port: ${pa}, weight: 3 }
        - { hostname: 127.0.0.1, port: ${pb}, weight: 1 }
`;

beforeAll(async () => {
  a = await startEchoBackend();
  b = await startEchoBackend();
  gw = buildGateway(yaml(a.port, b.port));
});
afterAll(async () => {
  gw.close();
  await a.stop();
  await b.stop();
});

async function echo(url: string, init?: RequestInit): Promise<{ res: Response; body: EchoBody; port: number }> {
  const res = await gw.call(url, init);
  expect(res.status).toBe(200);
  const body = (await res.json()) as EchoBody;
  const host = body.headers.find(([k]) => k === "host")?.[1] ?? "";
  return { res, body, port: Number(host.split(":")[1]) };
}

describe("routing", () => {
  test("matches the host case-insensitively and ignores the port", async () => {
    const { port } = await echo("http://API.Example.COM:8080/hello");
    expect(port).toBe(a.port);
  });

  test("the longest path prefix wins and is stripped, then joined to root with one slash", async () => {
    const { body } = await echo("http://api.example.com/v1/users?x=1&y=%20");
    expect(body.path).toBe("/base/users");
    expect(body.query).toBe("?x=1&y=%20");
  });

  test("path prefixes match whole segments only", async () => {
    const { body } = await echo("http://api.example.com/v1x/users");
    expect(body.path).toBe("/v1x/users"); // served by the "/" route, not by /v1
  });

  test("stripPath: false keeps the matched prefix", async () => {
    const { body } = await echo("http://api.example.com/keep/a");
    expect(body.path).toBe("/keep/a");
  });

  test("wildcard domains match subdomains, the most specific first, never the bare domain", async () => {
    expect((await echo("http://x.example.com/")).port).toBe(b.port);
    expect((await echo("http://x.eu.example.com/")).port).toBe(a.port);
    const res = await gw.call("http://example.com/");
    expect(res.status).toBe(404);
  });

  test("an unknown host gets 404 with the Otoroshi error shape", async () => {
    const res = await gw.call("http://nope.test/x");
    expect(res.status).toBe(404);
    expect(res.headers.get("otoroshi-error")).toBe("true");
    expect(res.headers.get("otoroshi-error-msg")).toBe("No route found");
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toEqual({ "Otoroshi-Error": "No route found" });
  });

  test("a method the route does not allow gets 405 with Allow", async () => {
    const res = await gw.call("http://m.test/", { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, POST");
    expect((await echo("http://m.test/", { method: "POST", body: "x" })).body.method).toBe("POST");
  });

  test("the backend gets the target's host unless preserveHost is set", async () => {
    const plain = await echo("http://api.example.com/");
    expect(plain.body.headers.find(([k]) => k === "host")?.[1]).toBe(`127.0.0.1:${a.port}`);
    const kept = await echo("http://keep-host.test:9999/");
    expect(kept.body.headers.find(([k]) => k === "host")?.[1]).toBe("keep-host.test:9999");
  });

  test("targets are balanced round-robin by weight", async () => {
    const ports: number[] = [];
    for (let i = 0; i < 8; i++) ports.push((await echo("http://lb.test/")).port);
    expect(ports.filter((p) => p === a.port).length).toBe(6);
    expect(ports.filter((p) => p === b.port).length).toBe(2);
  });

  test("X-Forwarded-* are set by the gateway and client-sent ones are dropped from untrusted peers", async () => {
    const { body } = await echo("http://api.example.com/", { headers: { "x-forwarded-for": "6.6.6.6", "x-forwarded-host": "evil.test", forwarded: "for=6.6.6.6" } });
    const h = new Map(body.headers);
    expect(h.get("x-forwarded-for")).toBe("127.0.0.1");
    expect(h.get("x-forwarded-host")).toBe("api.example.com");
    expect(h.get("x-forwarded-proto")).toBe("http");
    expect(h.has("forwarded")).toBe(false);
  });

  test("an unreachable backend gives 502 and the gateway keeps serving", async () => {
    const down = buildGateway(`
routes:
  - id: down
    frontend: { domains: [down.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: 1 }] }
`);
    const res = await down.call("http://down.test/");
    expect(res.status).toBe(502);
    expect(res.headers.get("otoroshi-error-code")).toBe("ERR_UPSTREAM_REFUSED");
    expect((await down.call("http://down.test/")).status).toBe(502);
    down.close();
  });

  test("a slow backend gives 504 after the route timeout", async () => {
    const slow = buildGateway(`
routes:
  - id: slow
    frontend: { domains: [slow.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${a.port} }], timeout: 200 }
`);
    const res = await slow.call("http://slow.test/slow/3000");
    expect(res.status).toBe(504);
    expect(res.headers.get("otoroshi-error-code")).toBe("ERR_UPSTREAM_TIMEOUT");
    slow.close();
  });
});

describe("request body limits", () => {
  test("a body over the route's maxBodySize gets 413, declared or chunked; under it passes", async () => {
    const limited = buildGateway(`
routes:
  - id: small
    frontend: { domains: [small.test], maxBodySize: 1000 }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${a.port} }] }
`);
    try {
      const declared = await limited.call("http://small.test/upload", { method: "POST", body: "x".repeat(1001) });
      expect(declared.status).toBe(413);
      expect(declared.headers.get("otoroshi-error-code")).toBe("ERR_PAYLOAD_TOO_LARGE");
      const chunks = (n: number) =>
        new ReadableStream<Uint8Array>({
          start(c) {
            for (let i = 0; i < n; i++) c.enqueue(new Uint8Array(300));
            c.close();
          },
        });
      const chunked = await limited.call(new Request("http://small.test/upload", { method: "POST", body: chunks(4), duplex: "half" } as RequestInit));
      expect(chunked.status).toBe(413);
      const ok = await limited.call(new Request("http://small.test/upload", { method: "POST", body: chunks(3), duplex: "half" } as RequestInit));
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as EchoBody).bodyLength).toBe(900);
    } finally {
      limited.close();
    }
  });
});

test("TRACE is never proxied (it would reflect credentials back)", async () => {
  const gw2 = buildGateway(`
routes:
  - id: r
    frontend: { domains: [t.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: 9 }] }
`);
  try {
    const res = await gw2.call("http://t.test/", { method: "TRACE" });
    expect(res.status).toBe(405);
  } finally {
    gw2.close();
  }
});

test("a request with two Host values gets 400, not a guess", async () => {
  const gw3 = buildGateway(`
routes:
  - id: r
    frontend: { domains: [h.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: 9 }] }
`);
  try {
    const res = await gw3.call("http://h.test/", { headers: { host: "h.test, other.test" } });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ "Otoroshi-Error": "Invalid Host header" });
  } finally {
    gw3.close();
  }
});

describe("absolute-form request targets (RFC 9112 §3.2.2: the target's authority wins over Host)", () => {
  // The runtime adapter reports an absolute-form target's authority in ConnInfo.authority; these
  // calls stand for `GET http://<authority>/… HTTP/1.1` with a different Host.
  test("routing, preserveHost and X-Forwarded-Host all use the authority", async () => {
    const res = await gw.call("http://api.example.com/x", { headers: { host: "api.example.com" } }, { authority: "keep-host.test:9999" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as EchoBody;
    const h = new Map(body.headers);
    expect(h.get("host")).toBe("keep-host.test:9999");
    expect(h.get("x-forwarded-host")).toBe("keep-host.test:9999");
    const other = await gw.call("http://keep-host.test/x", { headers: { host: "keep-host.test" } }, { authority: "nope.test" });
    expect(other.status).toBe(404);
  });

  test("userinfo in the authority gets 400 (RFC 9110 §4.2.4); two Host values still get 400", async () => {
    const userinfo = await gw.call("http://api.example.com/x", { headers: { host: "api.example.com" } }, { authority: "user@api.example.com" });
    expect(userinfo.status).toBe(400);
    expect(await userinfo.json()).toEqual({ "Otoroshi-Error": "Invalid Host header" });
    const twoHosts = await gw.call("http://api.example.com/x", { headers: { host: "api.example.com, keep-host.test" } }, { authority: "api.example.com" });
    expect(twoHosts.status).toBe(400);
  });
});

test("the canonical path is what is matched, stripped and joined to root", async () => {
  const { body } = await echo("http://api.example.com//v1//us%65rs/./x/..?y=//z");
  expect(body.path).toBe("/base/users/");
  expect(body.query).toBe("?y=//z");
  const res = await gw.call("http://api.example.com/v1/%zz");
  expect(res.status).toBe(400);
  expect(await res.json()).toEqual({ "Otoroshi-Error": "Invalid request path: malformed percent-encoding" });
});

test("backend.root is used in its canonical form (dot segments removed, slashes merged)", async () => {
  const g = buildGateway(`
routes:
  - id: r
    frontend: { domains: [root.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${a.port} }], root: /a/../b//%63/ }
`);
  try {
    const res = await g.call("http://root.test/x");
    expect(res.status).toBe(200);
    expect(((await res.json()) as EchoBody).path).toBe("/b/c/x");
  } finally {
    g.close();
  }
});
