// The real gateway process (binary or Deno) on 127.0.0.1 in front of a real echo backend.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "bun";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EchoBackend, type EchoBody, generatedSha256, generatedStream, GZIP_PLAIN_TEXT, startEchoBackend } from "../helpers/echo-backend.ts";
import { basic } from "../helpers/gateway.ts";
import { type GatewayProcess, runCli, RUNTIME, startGateway } from "./process.ts";

let be: EchoBackend;
let gw: GatewayProcess;

const config = (port: number) => `
routes:
  - id: echo
    frontend: { domains: [echo.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
  - id: private
    frontend: { domains: [private.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${port} }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
  - clientId: app
    clientSecret: secret-1
`;

beforeAll(async () => {
  be = await startEchoBackend();
  gw = await startGateway(config(be.port));
});
afterAll(async () => {
  await gw?.stop();
  await be?.stop();
});

async function curl(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const p = spawn(["curl", "-sS", "--max-time", "60", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

describe(`gateway process (${RUNTIME})`, () => {
  test("proxies a request and the backend sees the forwarded headers", async () => {
    const res = await fetch(`${gw.url}/a/b?c=d`, { headers: { host: "echo.test", "x-custom": "1" } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as EchoBody;
    const h = new Map(body.headers);
    expect(body.path).toBe("/a/b");
    expect(body.query).toBe("?c=d");
    expect(h.get("x-custom")).toBe("1");
    expect(h.get("x-forwarded-for")).toBe("127.0.0.1");
    expect(h.get("host")).toBe(`127.0.0.1:${be.port}`);
  });

  test("unknown host: 404 JSON error", async () => {
    const res = await fetch(`${gw.url}/`, { headers: { host: "nope.test" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("otoroshi-error")).toBe("true");
    expect(await res.json()).toEqual({ "Otoroshi-Error": "No route found" });
  });

  test("each Set-Cookie stays a separate line", async () => {
    const r = await curl(["-D", "-", "-o", "/dev/null", "-H", "host: echo.test", `${gw.url}/set-cookies`]);
    const lines = r.out.split("\r\n").filter((l) => l.toLowerCase().startsWith("set-cookie:"));
    expect(lines.length).toBe(2);
  });

  test("a client that did not ask for compression gets an uncompressed body", async () => {
    const r = await curl(["-H", "host: echo.test", `${gw.url}/gzip`]);
    expect(r.out).toBe(GZIP_PLAIN_TEXT);
  });

  test("a client asking for gzip gets the backend's gzip bytes", async () => {
    const file = join(tmpdir(), `oto-gzip-${process.pid}.txt`);
    const r = await curl(["--compressed", "-D", "-", "-o", file, "-H", "host: echo.test", `${gw.url}/gzip`]);
    expect(r.out.toLowerCase()).toContain("content-encoding: gzip");
    expect(await Bun.file(file).text()).toBe(GZIP_PLAIN_TEXT);
    rmSync(file, { force: true });
  });

  test("Expect: 100-continue uploads work and Expect is not forwarded", async () => {
    const file = join(tmpdir(), `oto-expect-${process.pid}.bin`);
    writeFileSync(file, "x".repeat(200_000));
    const r = await curl(["-H", "host: echo.test", "-H", "Expect: 100-continue", "--data-binary", `@${file}`, `${gw.url}/echo`]);
    rmSync(file, { force: true });
    expect(r.code).toBe(0);
    const body = JSON.parse(r.out) as EchoBody;
    expect(body.bodyLength).toBe(200_000);
    expect(new Map(body.headers).has("expect")).toBe(false);
  });

  test("hop-by-hop headers are stripped both ways", async () => {
    const req = await fetch(`${gw.url}/echo`, { headers: { host: "echo.test", connection: "x-drop-me", "x-drop-me": "1", "proxy-authorization": "Basic x", te: "trailers" } });
    const body = (await req.json()) as EchoBody;
    const res = await fetch(`${gw.url}/hop`, { headers: { host: "echo.test" } });
    expect(await res.text()).toBe("hop");
    const h = new Map(body.headers);
    expect(h.has("x-drop-me")).toBe(false);
    expect(h.has("proxy-authorization")).toBe(false);
    expect(h.has("te")).toBe(false);
    expect(res.headers.get("x-secret-hop")).toBeNull();
    expect(res.headers.get("keep-alive")).toBeNull();
  });

  test("a 100 MB upload streams through", async () => {
    const n = 100 * 1024 * 1024;
    const res = await fetch(`${gw.url}/upload`, { method: "POST", headers: { host: "echo.test" }, body: generatedStream(n), duplex: "half" } as RequestInit);
    const body = (await res.json()) as EchoBody;
    expect(body.bodyLength).toBe(n);
    expect(body.bodySha256).toBe(generatedSha256(n));
  }, 60_000);

  test("a 100 MB download streams through", async () => {
    const n = 100 * 1024 * 1024;
    const res = await fetch(`${gw.url}/bytes/${n}`, { headers: { host: "echo.test" } });
    const hash = createHash("sha256");
    let total = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      total += chunk.length;
    }
    expect(total).toBe(n);
    expect(hash.digest("hex")).toBe(generatedSha256(n));
  }, 60_000);

  test("the Apikeys plugin refuses anonymous calls and accepts Basic", async () => {
    const anon = await fetch(`${gw.url}/`, { headers: { host: "private.test" } });
    expect(anon.status).toBe(401);
    expect(await anon.json()).toEqual({ "Otoroshi-Error": "No ApiKey provided" });
    const ok = await fetch(`${gw.url}/`, { headers: { host: "private.test", authorization: basic("app", "secret-1") } });
    expect(ok.status).toBe(200);
    const h = new Map(((await ok.json()) as EchoBody).headers);
    expect(h.has("authorization")).toBe(false);
    expect(h.get("otoroshi-authenticated-client-id")).toBe("app");
  });

  test("the status endpoint answers on loopback", async () => {
    const res = await fetch(`${gw.url}/.well-known/otoroshi/status`);
    expect(res.status).toBe(200);
    const s = (await res.json()) as { generation: number; sha256: string; lastError: unknown };
    expect(s.generation).toBe(1);
    expect(s.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(s.lastError).toBeNull();
  });
});

describe(`command line (${RUNTIME})`, () => {
  test("--version and --help exit 0", async () => {
    const v = await runCli(["--version"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^otoroshi-lite \d+\.\d+\.\d+/);
    const h = await runCli(["--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("check");
  });

  test("check exits 0 on the bundled otoroshi.yaml and 1 with every problem on a broken file", async () => {
    const ok = await runCli(["check", "--config", "otoroshi.yaml"]);
    expect(ok.code).toBe(0);
    const bad = await runCli(["check", "--config", "tests/fixtures/configs/invalid/unknown-keys.yaml"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown-keys.yaml:2:3 server.prot: unknown key "prot" (did you mean "port"?)');
    expect(bad.stderr.split("\n").filter((l) => l.includes("unknown key")).length).toBe(3);
  });

  test("OTOROSHI_CONFIG names the config file when --config is absent", async () => {
    const bad = await runCli(["check"], { env: { OTOROSHI_CONFIG: "tests/fixtures/configs/invalid/unknown-keys.yaml" } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("unknown-keys.yaml:2:3");
    const ok = await runCli(["check"], { env: { OTOROSHI_CONFIG: "otoroshi.yaml" } });
    expect(ok.code).toBe(0);
  });

  test("an invalid config at start exits non-zero and lists the problems", async () => {
    const r = await runCli(["--config", "tests/fixtures/configs/invalid/wrong-types.yaml", "--port", "0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("wrong-types.yaml:2:9 server.port");
  });

  test("apikey create prints a secret once and a YAML entry holding only its hash; hash-secret agrees", async () => {
    const r = await runCli(["apikey", "create", "--client-id", "batch-job"]);
    expect(r.code).toBe(0);
    const secret = /^#\s+(\S{40,})$/m.exec(r.stdout)?.[1];
    expect(secret).toBeDefined();
    const hash = /clientSecret: (sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1];
    expect(hash).toBeDefined();
    expect(r.stdout).toContain("- clientId: batch-job");
    const h = await runCli(["hash-secret", secret!]);
    expect(h.stdout.trim()).toBe(hash!);
    const viaStdin = await runCli(["hash-secret"], { stdin: `${secret}\n` });
    expect(viaStdin.stdout.trim()).toBe(hash!);
  });

  test("check warns about secrets that stop working within 7 days", async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "oto-check-"));
    const soon = new Date(Date.now() + 3 * 24 * 3600 * 1000).toISOString();
    writeFileSync(join(dir, "o.yaml"), `apikeys:\n  - clientId: a\n    clientSecret: new-secret-value\n    previousSecrets:\n      - { secret: old-secret-value, validUntil: "${soon}" }\n`);
    const r = await runCli(["check", "--config", join(dir, "o.yaml")]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning:");
    expect(r.stderr).toContain("apikeys[0].previousSecrets[0].validUntil");
  });

  test("keygen prints a key pair ready to paste", async () => {
    const r = await runCli(["keygen", "--alg", "ES256", "--id", "k1"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("- id: k1");
    expect(r.stdout).toContain("BEGIN PRIVATE KEY");
  });
});
