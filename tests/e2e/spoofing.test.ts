// Headers the gateway asserts, on the wire (issue 8, items 5 and 6): a client sends every
// spelling a CGI/WSGI/PHP/Rack backend reads as the asserted header (HTTP_X_CLIENT for both
// `X-Client` and `X_Client`) to the real gateway process (binary or Deno); a backend on a bare
// socket records the header lines it received. No spelling may arrive, on any route.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type RawBackend, startRawBackend } from "../helpers/echo-backend.ts";
import { basic } from "../helpers/gateway.ts";
import { rawExchange } from "../helpers/raw-client.ts";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";

const KEY = { id: "spoof-app", secret: "spoof-app-secret-0123" };
let be: RawBackend;
let gw: GatewayProcess;

beforeAll(async () => {
  be = await startRawBackend();
  const target = `targets: [{ hostname: 127.0.0.1, port: ${be.port} }]`;
  gw = await startGateway(`
routes:
  - id: open
    frontend: { domains: [open.test] }
    backend: { ${target} }
  - id: api
    frontend: { domains: [api.test] }
    backend: { ${target} }
    plugins: [{ plugin: Apikeys }]
  - id: custom
    frontend: { domains: [custom.test] }
    backend: { ${target} }
    plugins: [{ plugin: Apikeys, config: { clientIdHeaderName: X-Client } }]
apikeys:
  - { clientId: ${KEY.id}, clientSecret: ${KEY.secret} }
`);
});
afterAll(async () => {
  await gw?.stop();
  await be?.stop();
});

const SPOOFS = [
  "Otoroshi-Authenticated-Client-Id",
  "Otoroshi_Authenticated_Client_Id",
  "Otoroshi_Authenticated-Client_Id",
  "otoroshi-authenticated_client-id",
  "X-Client",
  "X_Client",
  "X_Forwarded_For",
];

/** What the backend received for one raw request carrying every spoofed header. */
async function backendSees(host: string, extra: string[] = []): Promise<{ status: number; headers: [string, string][] }> {
  const before = be.seen.length;
  const lines = [`Host: ${host}`, ...SPOOFS.map((n) => `${n}: admin`), "X-Unrelated_Name: kept", ...extra, "Connection: close"];
  const res = await rawExchange(gw.port, `GET / HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`);
  const seen = be.seen.slice(before);
  expect(seen.length).toBe(1);
  return { status: res.status, headers: seen[0]!.headers };
}

const folded = (headers: [string, string][], name: string) => headers.filter(([k]) => k.replaceAll("_", "-") === name);

describe(`headers the gateway asserts (${RUNTIME})`, () => {
  test("on an open route, no spelling of the client id headers reaches the backend", async () => {
    const { status, headers } = await backendSees("open.test");
    expect(status).toBe(200);
    expect(folded(headers, "otoroshi-authenticated-client-id")).toEqual([]);
    expect(folded(headers, "x-client")).toEqual([]);
    expect(folded(headers, "x-forwarded-for")).toEqual([["x-forwarded-for", "127.0.0.1"]]);
    // Underscores themselves pass: only names that fold onto an asserted one are dropped.
    expect(folded(headers, "x-unrelated-name")).toEqual([["x-unrelated_name", "kept"]]);
  });

  test("on protected routes, the backend gets the gateway's value only", async () => {
    const auth = `Authorization: ${basic(KEY.id, KEY.secret)}`;
    const api = await backendSees("api.test", [auth]);
    expect(api.status).toBe(200);
    expect(folded(api.headers, "otoroshi-authenticated-client-id")).toEqual([["otoroshi-authenticated-client-id", KEY.id]]);
    expect(folded(api.headers, "x-client")).toEqual([]);
    const custom = await backendSees("custom.test", [auth]);
    expect(custom.status).toBe(200);
    expect(folded(custom.headers, "x-client")).toEqual([["x-client", KEY.id]]);
    expect(folded(custom.headers, "otoroshi-authenticated-client-id")).toEqual([]);
  });
});
