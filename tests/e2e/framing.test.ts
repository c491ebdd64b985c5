// Request body framing on the wire (issue 8, item 13): Content-Length and Transfer-Encoding as a
// client can send them twice or malformed, over raw sockets, to the real gateway process (binary
// or Deno) in front of the echo backend. Never a 5xx: the value RFC 9112 §6.3 lets us recover,
// or a 400 — ours in the Otoroshi shape, or the listener's own for what it refuses first.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { rawExchange } from "../helpers/raw-client.ts";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";

let be: EchoBackend;
let gw: GatewayProcess;

beforeAll(async () => {
  be = await startEchoBackend();
  gw = await startGateway(`
routes:
  - id: echo
    frontend: { domains: [echo.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
plugins:
  - plugin: ClientCredentialService
    config: { domain: oauth.test, secure: false }
apikeys:
  - { clientId: framing-app, clientSecret: framing-app-secret-0123 }
`);
});
afterAll(async () => {
  await gw?.stop();
  await be?.stop();
});

function post(host: string, path: string, fields: string[], body: string): Promise<Awaited<ReturnType<typeof rawExchange>>> {
  return rawExchange(gw.port, `POST ${path} HTTP/1.1\r\nHost: ${host}\r\n${fields.join("\r\n")}\r\nConnection: close\r\n\r\n${body}`);
}

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

describe(`request framing (${RUNTIME})`, () => {
  test("the same Content-Length twice is that length: the backend gets one field and the body", async () => {
    for (const fields of [["Content-Length: 5", "Content-Length: 5"], ["Content-Length: 5", "X-A: 1", "content-length: 5"], ["Content-Length: 5", "Content-Length: 5", "Content-Length: 5"]]) {
      const res = await post("echo.test", "/", fields, "hello");
      expect(res.status).toBe(200);
      const seen = JSON.parse(res.body) as EchoBody;
      expect(seen.headers.filter(([k]) => k === "content-length")).toEqual([["content-length", "5"]]);
      expect([seen.bodyLength, seen.bodySha256]).toEqual([5, sha("hello")]);
    }
  });

  test("5 and 05 (one decimal value, two spellings): refused by the listener or passed on as 5", async () => {
    const res = await post("echo.test", "/", ["Content-Length: 5", "Content-Length: 05"], "hello");
    // Bun's listener refuses it, Deno's hands it over as "5, 05": both are what RFC 9112 §6.3 allows.
    expect([200, 400]).toContain(res.status);
    if (res.status === 200) expect((JSON.parse(res.body) as EchoBody).headers.filter(([k]) => k === "content-length")).toEqual([["content-length", "5"]]);
  });

  test("twice at the token endpoint: a token, not a framing error", async () => {
    const body = JSON.stringify({ grant_type: "client_credentials", client_id: "framing-app", client_secret: "framing-app-secret-0123" });
    const cl = `Content-Length: ${Buffer.byteLength(body)}`;
    const res = await post("oauth.test", "/.well-known/otoroshi/oauth/token", ["Content-Type: application/json", cl, cl], body);
    expect(res.status).toBe(200);
    expect(typeof (JSON.parse(res.body) as { access_token?: unknown }).access_token).toBe("string");
  });

  test("differing, invalid or conflicting framing: 400, never a 5xx", async () => {
    const cases: [string[], string][] = [
      [["Content-Length: 5", "Content-Length: 6"], "hello!"],
      [["Content-Length: 5, 6"], "hello!"],
      [["Content-Length: 5, 5"], "hello"],
      [["Content-Length: +5"], "hello"],
      [["Content-Length: 5a"], "hello"],
      [["Content-Length: -1"], "hello"],
      [["Content-Length: 99999999999999999999"], "hello"],
      [["Content-Length: 3", "Transfer-Encoding: chunked"], "5\r\nhello\r\n0\r\n\r\n"],
      [["Transfer-Encoding: gzip, chunked"], "5\r\nhello\r\n0\r\n\r\n"],
      [["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], "5\r\nhello\r\n0\r\n\r\n"],
      [["Transfer-Encoding: identity", "Content-Length: 5"], "hello"],
    ];
    for (const [fields, body] of cases) {
      for (const [host, path] of [["echo.test", "/"], ["oauth.test", "/.well-known/otoroshi/oauth/token"]] as const) {
        const res = await post(host, path, ["Content-Type: application/json", ...fields], body);
        expect([fields, host, res.status]).toEqual([fields, host, 400]);
        // Ours is in the shape of the surface called; the listener's own refusal has an empty body.
        if (res.body !== "") {
          const shape = host === "echo.test" ? ["Otoroshi-Error"] : ["error", "error_description"];
          expect(Object.keys(JSON.parse(res.body) as object)).toEqual(shape);
        }
      }
    }
    // None of them was logged as a gateway or backend failure.
    expect(gw.logs.filter((l) => l.level === "error")).toEqual([]);
  });

  test("chunked uploads still pass, with the body as sent", async () => {
    const res = await post("echo.test", "/", ["Transfer-Encoding: chunked"], "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body) as EchoBody;
    expect([seen.bodyLength, seen.bodySha256]).toEqual([11, sha("hello world")]);
  });
});
