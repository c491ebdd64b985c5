// Each load-balancing type through the whole gateway, on real backends: who gets the calls.
import { afterEach, describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/errors.ts";
import { buildGateway, type TestGateway } from "../helpers/gateway.ts";
import { type FlipBackend, startFlipBackend, until } from "../helpers/flip-backend.ts";

const open: { gw?: TestGateway; backends: FlipBackend[] } = { backends: [] };
afterEach(async () => {
  if (open.gw) {
    await open.gw.rewrite("routes: []\n");
    open.gw.close();
    open.gw = undefined;
  }
  await Promise.all(open.backends.map((b) => b.stop()));
  open.backends = [];
});

async function setup(lb: string, weights = [1, 1], server = ""): Promise<{ gw: TestGateway; bs: FlipBackend[] }> {
  const bs = await Promise.all(weights.map((_, i) => startFlipBackend(`t${i}`)));
  open.backends.push(...bs);
  open.gw = buildGateway(`${server}
routes:
  - id: lb-route
    frontend: { domains: [lb.test] }
    backend:
      targets: [${bs.map((b, i) => `{ hostname: 127.0.0.1, port: ${b.port}, weight: ${weights[i]} }`).join(", ")}]
      loadBalancing: ${lb}
`);
  return { gw: open.gw, bs };
}

/** Which backend answered. */
async function who(gw: TestGateway, init: RequestInit = {}, info = {}): Promise<string> {
  const res = await gw.call("http://lb.test/x", init, info);
  expect(res.status).toBe(200);
  return ((await res.json()) as { name: string }).name;
}

describe("load-balancing types through the gateway", () => {
  test("RoundRobin is the default and follows the weights (3:1 → t0 t0 t1 t0)", async () => {
    const { gw } = await setup("{}", [3, 1]);
    const seq = [];
    for (let i = 0; i < 8; i++) seq.push(await who(gw));
    expect(seq).toEqual(["t0", "t0", "t1", "t0", "t0", "t0", "t1", "t0"]);
  });

  test("Random follows the weights (1:3) within 10 points over 400 calls", async () => {
    const { gw } = await setup("{ type: Random }", [1, 3]);
    let t1 = 0;
    for (let i = 0; i < 400; i++) if ((await who(gw)) === "t1") t1++;
    expect(Math.abs(t1 / 400 - 0.75)).toBeLessThan(0.1);
  });

  for (const type of ["LeastConnections", "PowerOfTwoRandomChoices"]) {
    test(`${type}: while one target holds a slow call, the others get the new calls`, async () => {
      const { gw, bs } = await setup(`{ type: ${type} }`);
      const slow = gw.call("http://lb.test/slow/1000");
      await until(() => bs[0]!.inFlight + bs[1]!.inFlight === 1, "the slow call reached a backend");
      const busy = bs[0]!.inFlight === 1 ? "t0" : "t1";
      for (let i = 0; i < 6; i++) expect(await who(gw)).not.toBe(busy);
      expect((await slow).status).toBe(200);
    });
  }

  test("IpAddressHash: each client address stays on one target, after trusted X-Forwarded-For", async () => {
    const { gw } = await setup("{ type: IpAddressHash }", [1, 1], "server: { trustedProxies: [127.0.0.1] }");
    const seen = new Set<string>();
    for (let c = 0; c < 16; c++) {
      const ip = `203.0.113.${c}`;
      const first = await who(gw, { headers: { "x-forwarded-for": ip } });
      seen.add(first);
      for (let i = 0; i < 3; i++) expect(await who(gw, { headers: { "x-forwarded-for": ip } })).toBe(first);
    }
    expect(seen.size).toBe(2);
    // From a peer that is not a trusted proxy, X-Forwarded-For is not the client address.
    const peer = { remoteAddress: "198.51.100.7" };
    const fixed = await who(gw, { headers: { "x-forwarded-for": "203.0.113.1" } }, peer);
    for (let c = 0; c < 8; c++) expect(await who(gw, { headers: { "x-forwarded-for": `203.0.113.${c}` } }, peer)).toBe(fixed);
  });

  test("HeaderHash: a header value stays on one target; without the header, round robin", async () => {
    const { gw } = await setup("{ type: HeaderHash, headerName: X-Tenant }");
    const seen = new Set<string>();
    for (let c = 0; c < 16; c++) {
      const first = await who(gw, { headers: { "x-tenant": `tenant-${c}` } });
      seen.add(first);
      for (let i = 0; i < 3; i++) expect(await who(gw, { headers: { "x-tenant": `tenant-${c}` } })).toBe(first);
    }
    expect(seen.size).toBe(2);
    const rr = [await who(gw), await who(gw), await who(gw), await who(gw)];
    expect(rr.filter((n) => n === "t0").length).toBe(2);
  });

  test("CookieHash: a cookie value stays on one target; without the cookie, round robin", async () => {
    const { gw } = await setup("{ type: CookieHash, cookieName: session }");
    const seen = new Set<string>();
    for (let c = 0; c < 16; c++) {
      const cookie = `theme=dark; session=s${c}`;
      const first = await who(gw, { headers: { cookie } });
      seen.add(first);
      for (let i = 0; i < 3; i++) expect(await who(gw, { headers: { cookie } })).toBe(first);
    }
    expect(seen.size).toBe(2);
    const rr = [await who(gw, { headers: { cookie: "theme=dark" } }), await who(gw), await who(gw), await who(gw)];
    expect(rr.filter((n) => n === "t0").length).toBe(2);
  });
});

describe("load-balancing config is checked at load", () => {
  const load = (backend: string) => {
    try {
      buildGateway(`
routes:
  - id: bad
    frontend: { domains: [bad.test] }
    backend:
${backend}
`).close();
      return "";
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return e.message;
    }
  };
  test("HeaderHash without headerName, CookieHash without cookieName, unknown type, all backups", () => {
    expect(load("      targets: [{ hostname: a.test }]\n      loadBalancing: { type: HeaderHash }")).toMatch(/:\d+:\d+ routes\[0\]\.backend\.loadBalancing\.headerName: HeaderHash needs headerName/);
    expect(load("      targets: [{ hostname: a.test }]\n      loadBalancing: { type: CookieHash }")).toMatch(/routes\[0\]\.backend\.loadBalancing\.cookieName: CookieHash needs cookieName/);
    expect(load("      targets: [{ hostname: a.test }]\n      loadBalancing: { type: Sticky }")).toMatch(/routes\[0\]\.backend\.loadBalancing\.type: unknown load balancing type/);
    expect(load("      targets: [{ hostname: a.test, backup: true }]")).toMatch(/routes\[0\]\.backend\.targets: every target is a backup/);
    expect(load("      targets: [{ hostname: a.test }]\n      healthCheck: { enabled: true, url: health }")).toMatch(/routes\[0\]\.backend\.healthCheck\.url: expected a path/);
    expect(load("      targets: [{ hostname: a.test }]\n      client: { retries: -1 }")).toMatch(/routes\[0\]\.backend\.client\.retries/);
    // The value from the file is never quoted back.
    expect(load("      targets: [{ hostname: a.test }]\n      loadBalancing: { type: SecretLookingValue }")).not.toContain("SecretLookingValue");
  });
});
