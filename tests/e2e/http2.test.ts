// HTTP/2 on the HTTPS listener (issue 11, "Also"): ALPN "h2" gets HTTP/2, clients that offer only
// http/1.1 get HTTP/1.1, on the binary (Bun.serve `http2`) and on Deno (its engine negotiates h2).
// curl is the real client; docs/compatibility.md says what each runtime does on the plain port.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "bun";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../helpers/echo-backend.ts";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";

const TIMEOUT = 60_000;
const dir = mkdtempSync(join(tmpdir(), "oto-h2-"));
let be: EchoBackend;
let gw: GatewayProcess;

beforeAll(async () => {
  const r = spawnSync([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=h2.test",
    "-addext",
    "subjectAltName=DNS:h2.test",
    "-keyout",
    join(dir, "k.pem"),
    "-out",
    join(dir, "c.pem"),
  ], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  const indent = (pem: string) => pem.trim().split("\n").join("\n      ");
  be = await startEchoBackend();
  gw = await startGateway(`
server:
  https: { port: 0, keyPairs: [c] }
routes:
  - id: echo
    frontend: { domains: ["h2.test"] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
keypairs:
  - id: c
    privateKey: |
      ${indent(readFileSync(join(dir, "k.pem"), "utf8"))}
    certificate: |
      ${indent(readFileSync(join(dir, "c.pem"), "utf8"))}
`);
}, TIMEOUT);

afterAll(async () => {
  await gw?.stop();
  await be?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** curl (async: the echo backend runs in this process) → [HTTP version, status, body]. */
async function curl(args: string[]): Promise<[string, number, string]> {
  const p = spawn(["curl", "-s", "--max-time", "20", "--cacert", join(dir, "c.pem"), "--resolve", `h2.test:${gw.httpsPort}:127.0.0.1`, "-w", "\n%{http_version} %{http_code}", ...args], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = await new Response(p.stdout).text();
  await p.exited;
  const nl = out.lastIndexOf("\n");
  const [version = "", code = "0"] = out.slice(nl + 1).split(" ");
  return [version, Number(code), out.slice(0, nl)];
}

describe("HTTP/2 on the HTTPS listener", () => {
  test("a client offering h2 by ALPN gets HTTP/2, and the call is proxied", async () => {
    const [version, status, body] = await curl(["--http2", `https://h2.test:${gw.httpsPort}/hello?x=1`]);
    expect(version).toBe("2");
    expect(status).toBe(200);
    const seen = JSON.parse(body) as EchoBody;
    expect(seen.path).toBe("/hello");
    expect(new Map(seen.headers).get("x-forwarded-proto")).toBe("https");
  }, TIMEOUT);

  test("a POST body over HTTP/2 reaches the backend", async () => {
    const [version, status, body] = await curl(["--http2", "--data-binary", "x".repeat(100_000), `https://h2.test:${gw.httpsPort}/post`]);
    expect([version, status]).toEqual(["2", 200]);
    expect((JSON.parse(body) as EchoBody).bodyLength).toBe(100_000);
  }, TIMEOUT);

  test("a client offering only http/1.1 gets HTTP/1.1", async () => {
    const [version, status] = await curl(["--http1.1", `https://h2.test:${gw.httpsPort}/`]);
    expect([version, status]).toEqual(["1.1", 200]);
  }, TIMEOUT);

  test(`the plain port: ${RUNTIME === "deno" ? "Deno also speaks prior-knowledge h2c" : "HTTP/1.1 only on Bun"}`, async () => {
    const [version, status] = await curl(["--http2-prior-knowledge", "-H", "Host: h2.test", `http://127.0.0.1:${gw.port}/`]);
    if (RUNTIME === "deno") expect([version, status]).toEqual(["2", 200]);
    else expect(status).toBe(0);
  }, TIMEOUT);
});
