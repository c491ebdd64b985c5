// The HTTPS listener: certificates from key pairs chosen by SNI, and the OAuth endpoints with
// secure: true answering only over TLS.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "bun";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";

let be: EchoBackend;
let gw: GatewayProcess;
const certDir = mkdtempSync(join(tmpdir(), "oto-https-"));

function makeCert(name: string): { key: string; cert: string; certFile: string } {
  const key = join(certDir, `${name}.key`);
  const cert = join(certDir, `${name}.crt`);
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
    `/CN=${name}`,
    "-addext",
    `subjectAltName=DNS:${name}`,
    "-keyout",
    key,
    "-out",
    cert,
  ], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  return { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8"), certFile: cert };
}

const a = makeCert("a.secure.test");
const b = makeCert("b.secure.test");
const indent = (pem: string) => pem.trim().split("\n").join("\n      ");

beforeAll(async () => {
  be = await startEchoBackend();
  gw = await startGateway(`
server:
  https: { port: 0, keyPairs: [cert-a, cert-b] }
plugins:
  - plugin: ClientCredentialService
    config: { domain: '.*\\.secure\\.test', secure: true }
routes:
  - id: echo
    frontend: { domains: ["*.secure.test"] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
apikeys:
  - { clientId: app, clientSecret: app-secret }
keypairs:
  - id: cert-a
    privateKey: |
      ${indent(a.key)}
    certificate: |
      ${indent(a.cert)}
  - id: cert-b
    privateKey: |
      ${indent(b.key)}
    certificate: |
      ${indent(b.cert)}
`);
});
afterAll(async () => {
  await gw?.stop();
  await be?.stop();
  rmSync(certDir, { recursive: true, force: true });
});

async function curl(args: string[]): Promise<{ code: number; out: string }> {
  const p = spawn(["curl", "-sS", "--max-time", "20", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: out + err };
}

describe(`HTTPS listener (${RUNTIME})`, () => {
  test("serves each name with its own certificate (SNI), verified by curl", async () => {
    expect(gw.httpsPort).toBeGreaterThan(0);
    for (const [name, c] of [["a.secure.test", a], ["b.secure.test", b]] as const) {
      const r = await curl(["--resolve", `${name}:${gw.httpsPort}:127.0.0.1`, "--cacert", c.certFile, `https://${name}:${gw.httpsPort}/hello`]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out).path).toBe("/hello");
    }
  });

  test("the backend learns the request came over https", async () => {
    const r = await curl(["--resolve", `a.secure.test:${gw.httpsPort}:127.0.0.1`, "--cacert", a.certFile, `https://a.secure.test:${gw.httpsPort}/`]);
    const headers = new Map(JSON.parse(r.out).headers as [string, string][]);
    expect(headers.get("x-forwarded-proto")).toBe("https");
  });

  test("secure: true OAuth endpoints answer over https and refuse plain http with invalid_request", async () => {
    const body = "grant_type=client_credentials&client_id=app&client_secret=app-secret";
    const tls = await curl(["--resolve", `a.secure.test:${gw.httpsPort}:127.0.0.1`, "--cacert", a.certFile, "-d", body, `https://a.secure.test:${gw.httpsPort}/.well-known/otoroshi/oauth/token`]);
    expect(JSON.parse(tls.out).token_type).toBe("Bearer");
    const plain = await fetch(`${gw.url}/.well-known/otoroshi/oauth/token`, { method: "POST", headers: { host: "a.secure.test", "content-type": "application/x-www-form-urlencoded" }, body });
    expect(plain.status).toBe(400);
    expect(((await plain.json()) as { error: string }).error).toBe("invalid_request");
  });
});
