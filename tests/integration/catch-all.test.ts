// The catch-all domain "*": any host, after every exact and wildcard domain (issue 11, "Also").
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { buildGateway, type TestGateway } from "../helpers/gateway.ts";
import { parseDomain } from "../../src/router/domain.ts";

let be: EchoBackend;
let gw: TestGateway;

beforeAll(async () => {
  be = await startEchoBackend();
  const t = `targets: [{ hostname: 127.0.0.1, port: ${be.port} }]`;
  gw = buildGateway(`
routes:
  - { id: any, frontend: { domains: ["*"] }, backend: { ${t}, root: /any } }
  - { id: any-api, frontend: { domains: ["*/api"] }, backend: { ${t}, root: /any-api } }
  - { id: exact, frontend: { domains: [api.test/v1] }, backend: { ${t}, root: /exact } }
  - { id: wild, frontend: { domains: ["*.wild.test"] }, backend: { ${t}, root: /wild } }
`);
});
afterAll(async () => {
  gw.close();
  await be.stop();
});

const pathSeen = async (url: string) => {
  const res = await gw.call(url);
  expect(res.status).toBe(200);
  return ((await res.json()) as EchoBody).path;
};

describe('domains: ["*"]', () => {
  test("matches any host, after exact and wildcard domains", async () => {
    expect(await pathSeen("http://api.test/v1/x")).toBe("/exact/x");
    expect(await pathSeen("http://a.wild.test/x")).toBe("/wild/x");
    expect(await pathSeen("http://unknown.example/x")).toBe("/any/x");
    expect(await pathSeen("http://203.0.113.7:8080/x")).toBe("/any/x");
  });
  test("a known host whose paths do not match falls through to the catch-all", async () => {
    expect(await pathSeen("http://api.test/other")).toBe("/any/other");
  });
  test('"*/api" is a catch-all with a path: longest prefix wins among catch-alls', async () => {
    expect(await pathSeen("http://unknown.example/api/x")).toBe("/any-api/x");
    expect(await pathSeen("http://unknown.example/apix")).toBe("/any/apix");
  });
  test('"*" alone is the catch-all; other uses of "*" are still refused', () => {
    expect(parseDomain("*")).toEqual({ ok: true, spec: { host: "", wildcard: true, path: "/" } });
    for (const bad of ["**", "*x.test", "a.*.test", "*:80", "*.*"]) expect(parseDomain(bad).ok).toBe(false);
  });
});
