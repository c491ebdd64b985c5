// Request paths on the wire (issue 8, items 1, 2 and 14): raw request lines, as `curl
// --path-as-is` or a hostile client sends them, to the real gateway process (binary or Deno),
// in front of a backend on a bare socket that records the exact request line it received.
// The path the router matches must be the path the backend receives, for every spelling.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect } from "node:net";
import { type RawBackend, startRawBackend } from "../helpers/echo-backend.ts";
import { basic } from "../helpers/gateway.ts";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";

const KEY = { id: "paths-app", secret: "paths-app-secret-0123" };
let be: RawBackend;
let gw: GatewayProcess;

beforeAll(async () => {
  be = await startRawBackend();
  const target = `targets: [{ hostname: 127.0.0.1, port: ${be.port} }]`;
  gw = await startGateway(`
routes:
  - id: open
    frontend: { domains: [shared.test, open.test] }
    backend: { ${target} }
  - id: admin
    frontend: { domains: [shared.test/admin], stripPath: false }
    backend: { ${target} }
    plugins: [{ plugin: Apikeys }]
  - id: api
    frontend: { domains: [api.test] }
    backend: { ${target} }
    plugins: [{ plugin: Apikeys }]
  - id: kept
    frontend: { domains: [kept.test] }
    backend: { ${target}, preserveHost: true }
apikeys:
  - { clientId: ${KEY.id}, clientSecret: ${KEY.secret} }
`);
});
afterAll(async () => {
  await gw?.stop();
  await be?.stop();
});

interface RawResponse {
  status: number;
  body: string;
}

/** Sends `target` as the request line's target, byte for byte; bounded by a 10 s deadline. */
function raw(target: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const fields = Object.entries({ host: "shared.test", ...headers, connection: "close" }).map(([k, v]) => `${k}: ${v}\r\n`);
  return new Promise((resolve, reject) => {
    const socket = connect(gw.port, "127.0.0.1", () => socket.write(`GET ${target} HTTP/1.1\r\n${fields.join("")}\r\n`));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within 10 s for ${target}`));
    }, 10_000);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const head = text.slice(0, text.indexOf("\r\n\r\n"));
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0), body: text.slice(head.length + 4) });
    });
  });
}

/** The status and what the backend received (null: nothing) for one raw request. */
async function outcome(target: string, headers: Record<string, string> = {}): Promise<{ target: string; status: number; backend: string | null }> {
  const before = be.seen.length;
  const res = await raw(target, headers);
  const seen = be.seen.slice(before);
  expect(seen.length).toBeLessThanOrEqual(1);
  return { target, status: res.status, backend: seen[0]?.line ?? null };
}

const withKey = { authorization: basic(KEY.id, KEY.secret) };

describe(`request paths on the wire (${RUNTIME})`, () => {
  test("no spelling of /admin reaches the backend without credentials (401)", async () => {
    for (
      const target of ["//admin/users", "///admin/x", "/pub/..//admin", "/%61dmin/users", "/adm%69n/x", "/%61%64%6D%69%6E", "/%2e%2e/admin", "/pub/%2E%2e/admin/x", "/\\admin/users", "/admin/./x"]
    ) {
      expect(await outcome(target)).toEqual({ target, status: 401, backend: null });
    }
  });

  test("with credentials, the backend gets the canonical request line, query byte for byte", async () => {
    const cases: [string, string][] = [
      ["//admin//users?q=//x/../y%2f", "GET /admin/users?q=//x/../y%2f HTTP/1.1"],
      ["/%61dmin/%7eme/./x/..", "GET /admin/~me/ HTTP/1.1"],
      ["/pub/..//admin/%c3%a9", "GET /admin/%C3%A9 HTTP/1.1"],
    ];
    for (const [target, line] of cases) expect(await outcome(target, withKey)).toEqual({ target, status: 200, backend: line });
  });

  test("on the open route, the backend gets the canonical path: merged slashes, no dot segments, %2F kept", async () => {
    const cases: [string, string][] = [
      ["//pub//a/./b/%7e/%c3%a9/x%2fy?q=//x/../y", "GET /pub/a/b/~/%C3%A9/x%2Fy?q=//x/../y HTTP/1.1"],
      ["/../pub", "GET /pub HTTP/1.1"],
      ["/pub/a%2Fb;v=1", "GET /pub/a%2Fb;v=1 HTTP/1.1"],
      ["/", "GET / HTTP/1.1"],
    ];
    for (const [target, line] of cases) expect(await outcome(target)).toEqual({ target, status: 200, backend: line });
  });

  test("paths with no safe canonical form get 400 and never reach the backend", async () => {
    for (const target of ["/pub/%zz", "/pub%", "/a%00b", "/pub/..;/admin/users", "/admin;x/users", "/admin%2Fusers", "/pub%2F..%2Fadmin"]) {
      expect(await outcome(target, withKey)).toEqual({ target, status: 400, backend: null });
    }
    const res = await raw("/pub/%zz");
    expect(JSON.parse(res.body)).toEqual({ "Otoroshi-Error": "Invalid request path: malformed percent-encoding" });
  });

  // Bun 1.4's listener builds req.url from Host for an absolute-form target and keeps no trace of
  // the target's own authority (docs/compatibility.md), so only runtimes that report it can
  // honour RFC 9112 §3.2.2. Should Bun start reporting it, the binary branch fails: update it.
  test("an absolute-form target is routed by its authority, not by Host", async () => {
    const protectedByAuthority = await outcome("http://api.test/x", { host: "open.test" });
    const kept = await outcome("http://kept.test/k", { host: "open.test" });
    if (RUNTIME === "deno") {
      expect(protectedByAuthority).toEqual({ target: "http://api.test/x", status: 401, backend: null });
      expect(kept).toEqual({ target: "http://kept.test/k", status: 200, backend: "GET /k HTTP/1.1" });
      const h = new Map(be.seen[be.seen.length - 1].headers);
      expect(h.get("host")).toBe("kept.test");
      expect(h.get("x-forwarded-host")).toBe("kept.test");
    } else {
      expect(protectedByAuthority).toEqual({ target: "http://api.test/x", status: 200, backend: "GET /x HTTP/1.1" });
    }
    // The path of an absolute-form target is canonicalised like any other.
    expect(await outcome("http://shared.test//%61dmin/x", { host: "shared.test" })).toEqual({ target: "http://shared.test//%61dmin/x", status: 401, backend: null });
  });
});
