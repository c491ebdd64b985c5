// Automatic HTTPS against a real ACME server (Pebble, with pebble-challtestsrv answering
// 127.0.0.1 for every name): HTTP-01 over the gateway's own HTTP listener, certificates served
// by SNI and verified by curl against Pebble's root, kept in stateDir across restarts, names
// added by a reload, renewal, failures; and key pair certificates read from files, replaced
// under a running gateway.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn, spawnSync } from "bun";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { hasPebble, type Pebble, startPebble } from "../helpers/pebble.ts";
import { serialHex } from "../../src/tls/acme/store.ts";
import { freePort } from "../helpers/redis.ts";
import { type GatewayProcess, RUNTIME, startGateway } from "./process.ts";

if (!hasPebble) console.warn("acme.test.ts: pebble or pebble-challtestsrv is not installed (apt-get install pebble): ACME tests skipped");

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), "oto-acme-"));
  dirs.push(d);
  return d;
};

/** The serial of the certificate served for `name` (no verification: we compare serials). */
function servedSerial(port: number, name: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, servername: name, rejectUnauthorized: false }, () => {
      resolve(serialHex(s.getPeerCertificate().serialNumber));
      s.end();
    });
    s.setTimeout(10_000, () => s.destroy(new Error("TLS handshake timed out")));
    s.on("error", reject);
  });
}

async function curl(args: string[]): Promise<{ code: number; out: string }> {
  const p = spawn(["curl", "-sS", "--max-time", "20", ...args], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out: out + err };
}

const fileSerial = (pem: string) => serialHex(new X509Certificate(pem).serialNumber);

describe.skipIf(!hasPebble)(`ACME against Pebble (${RUNTIME})`, () => {
  let pebble: Pebble;
  let be: EchoBackend;
  let httpPort: number;
  let root: string;
  let gw: GatewayProcess | undefined;
  const dir = tmp();
  let firstSerial = "";

  const yaml = (names: string[], extra = "") => `
server:
  stateDir: ./state
  https:
    port: 0
    acme:
      email: ops@acme.test
      directory: ${pebble.directory}
      directoryCa: \${file:${pebble.tlsCaFile}}${extra}
routes:
  - id: app
    frontend: { domains: [${names.map((n) => JSON.stringify(n)).join(", ")}] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
  - { clientId: app, clientSecret: app-secret }
`;

  beforeAll(async () => {
    httpPort = await freePort();
    pebble = await startPebble({ httpPort });
    root = readFileSync(pebble.rootFile, "utf8");
    writeFileSync(join(dir, "root.pem"), root);
    be = await startEchoBackend();
  });
  afterAll(async () => {
    await gw?.stop();
    await pebble?.stop();
    await be?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("a certificate obtained over HTTP-01 is served by SNI and verifies against Pebble's root", async () => {
    gw = await startGateway(yaml(["app.acme.test", "*.wild.acme.test"]), { dir, args: ["--port", String(httpPort)] });
    const issued = await gw.waitForLog((l) => l.event === "acme.issued" && l.domain === "app.acme.test", 30_000);
    firstSerial = String(issued.serial);
    // Until then the name had the default certificate, and a line said why; wildcards are skipped.
    expect(gw.logs.some((l) => l.event === "acme.pending" && l.domain === "app.acme.test")).toBe(true);
    expect(gw.logs.some((l) => l.event === "acme.skipped" && l.domain === "*.wild.acme.test")).toBe(true);
    await gw.waitForLog((l) => l.event === "tls.certificates_updated", 10_000);
    const r = await curl(["--resolve", `app.acme.test:${gw.httpsPort}:127.0.0.1`, "--cacert", join(dir, "root.pem"), "-u", "app:app-secret", `https://app.acme.test:${gw.httpsPort}/hello`]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).path).toBe("/hello");
    expect(await servedSerial(gw.httpsPort!, "app.acme.test")).toBe(firstSerial);
  }, 60_000);

  test("account key and certificate files are 0600 in 0700 folders under stateDir", () => {
    const base = join(dir, "state", "acme", pebble.directory.replace(/^https:\/\//, "").replace(/[^A-Za-z0-9.-]+/g, "_"));
    for (const f of ["account.key.pem", "certificates/app.acme.test.key.pem", "certificates/app.acme.test.chain.pem"]) {
      expect((statSync(join(base, f)).mode & 0o777).toString(8)).toBe("600");
    }
    for (const d of [base, join(base, "certificates")]) expect((statSync(d).mode & 0o777).toString(8)).toBe("700");
    expect(fileSerial(readFileSync(join(base, "certificates/app.acme.test.chain.pem"), "utf8"))).toBe(firstSerial);
  });

  test("the challenge path answers before routing: an unknown token is a 404 in the Otoroshi shape, not the route's 401", async () => {
    const res = await fetch(`${gw!.url}/.well-known/acme-challenge/no-such-token`, { headers: { host: "app.acme.test" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("otoroshi-error")).toBe("true");
    expect(((await res.json()) as Record<string, string>)["Otoroshi-Error"]).toContain("ACME challenge");
    // The same route without the challenge path wants credentials.
    expect((await fetch(`${gw!.url}/x`, { headers: { host: "app.acme.test" } })).status).toBe(401);
  });

  test("the status endpoint lists each managed certificate with its names, expiry and last error", async () => {
    const status = (await (await fetch(`${gw!.url}/.well-known/otoroshi/status`)).json()) as { tls: { certificates: Record<string, unknown>[] } };
    const entry = status.tls.certificates.find((c) => (c.names as string[]).includes("app.acme.test"))!;
    expect(entry.source).toBe("acme");
    expect(entry.serial).toBe(firstSerial);
    expect(Date.parse(String(entry.notAfter))).toBeGreaterThan(Date.now());
    expect(entry.lastError).toBeNull();
    // The metrics endpoint says the same: the expiry in Unix seconds, and no failing renewal.
    const metrics = await (await fetch(`${gw!.url}/.well-known/otoroshi/monitoring/metrics`)).text();
    expect(metrics).toContain(`otoroshi_certificate_expiry_timestamp_seconds{name="app.acme.test",source="acme"} ${Date.parse(String(entry.notAfter)) / 1000}`);
    expect(metrics).toContain('otoroshi_certificate_renewal_failing{name="app.acme.test"} 0');
  });

  test("a name that fails validation is one acme.order_failed line with the server's problem document", async () => {
    // A second gateway whose HTTP port is not the one Pebble validates on: Pebble reaches the
    // first gateway instead, which has no such token, and marks the challenge invalid.
    const other = await startGateway(yaml(["other.acme.test"]), { dir: tmp(), args: ["--port", "0"] });
    try {
      const failed = await other.waitForLog((l) => l.event === "acme.order_failed", 30_000);
      expect(failed.level).toBe("error");
      expect(failed.domain).toBe("other.acme.test");
      const problem = failed.problem as { type: string; detail: string };
      expect(problem.type).toMatch(/^urn:ietf:params:acme:error:/);
      expect(problem.detail.length).toBeGreaterThan(0);
      expect(JSON.stringify(other.logs)).not.toContain("BEGIN PRIVATE KEY");
      const status = (await (await fetch(`${other.url}/.well-known/otoroshi/status`)).json()) as { tls: { certificates: { names: string[]; lastError: { type: string } | null }[] } };
      expect(status.tls.certificates.find((c) => c.names.includes("other.acme.test"))!.lastError!.type).toBe(problem.type);
      expect(await (await fetch(`${other.url}/.well-known/otoroshi/monitoring/metrics`)).text()).toContain('otoroshi_certificate_renewal_failing{name="other.acme.test"} 1');
      // Plain HTTP keeps serving the route meanwhile.
      expect((await fetch(`${other.url}/x`, { headers: { host: "other.acme.test" } })).status).toBe(401);
    } finally {
      await other.stop();
    }
  }, 60_000);

  test("a name added by a reload gets its certificate without a restart", async () => {
    writeFileSync(gw!.file, yaml(["app.acme.test", "*.wild.acme.test", "new.acme.test"]));
    await gw!.waitForLog((l) => l.event === "acme.pending" && l.domain === "new.acme.test", 20_000);
    const issued = await gw!.waitForLog((l) => l.event === "acme.issued" && l.domain === "new.acme.test", 30_000);
    await gw!.waitForLog((l) => l.event === "tls.certificates_updated" && (l.names as string[]).includes("new.acme.test"), 10_000);
    expect(await servedSerial(gw!.httpsPort!, "new.acme.test")).toBe(String(issued.serial));
    const r = await curl(["--resolve", `new.acme.test:${gw!.httpsPort}:127.0.0.1`, "--cacert", join(dir, "root.pem"), "-u", "app:app-secret", `https://new.acme.test:${gw!.httpsPort}/`]);
    expect(r.code).toBe(0);
    // The first name kept its certificate.
    expect(await servedSerial(gw!.httpsPort!, "app.acme.test")).toBe(firstSerial);
  }, 60_000);

  test("a restart serves the stored certificate at once and orders nothing", async () => {
    await gw!.stop();
    const before = pebble.orders();
    gw = await startGateway(readFileSync(join(dir, "otoroshi.yaml"), "utf8"), { dir, args: ["--port", String(httpPort)] });
    // The very first handshake after the listener is up gets the stored certificate.
    expect(await servedSerial(gw.httpsPort!, "app.acme.test")).toBe(firstSerial);
    expect(gw.logs.some((l) => l.event === "acme.loaded" && l.domain === "app.acme.test")).toBe(true);
    // A reload round trip later, still nothing was ordered.
    const status = await fetch(`${gw.url}/.well-known/otoroshi/status`);
    expect(status.status).toBe(200);
    await Bun.sleep(500);
    expect(gw.logs.filter((l) => l.event === "acme.order")).toEqual([]);
    expect(pebble.orders()).toBe(before);
  }, 60_000);

  test("a certificate inside renewBefore is renewed in the background and swapped into the running listener", async () => {
    // Pebble issues 7-day certificates here: renewBefore 7 days less 4 s makes each one due 4 s after issue.
    await gw!.stop(); // the HTTP port Pebble validates on is the new gateway's from now on
    gw = undefined;
    const g = await startGateway(yaml(["renew.acme.test"], `\n      renewBefore: ${7 - 4 / 86_400}`), { dir: tmp(), args: ["--port", String(httpPort)] });
    try {
      const first = await g.waitForLog((l) => l.event === "acme.issued" && l.domain === "renew.acme.test", 30_000);
      await g.waitForLog((l) => l.event === "tls.certificates_updated", 10_000);
      expect(await servedSerial(g.httpsPort!, "renew.acme.test")).toBe(String(first.serial));
      // A request in flight across the swap completes.
      const slow = curl(["--resolve", `renew.acme.test:${g.httpsPort}:127.0.0.1`, "--cacert", join(dir, "root.pem"), "-u", "app:app-secret", `https://renew.acme.test:${g.httpsPort}/slow/6000`]);
      const renewal = await g.waitForLog((l) => l.event === "acme.order" && l.domain === "renew.acme.test" && l.reason === "renewal", 30_000);
      expect(renewal.level).toBe("info");
      const second = await g.waitForLog((l) => l.event === "acme.issued" && l.domain === "renew.acme.test" && l.serial !== first.serial, 30_000);
      await g.waitForLog((l) => l.event === "tls.certificates_updated" && g.logs.indexOf(l) > g.logs.indexOf(second), 10_000);
      expect(await servedSerial(g.httpsPort!, "renew.acme.test")).toBe(String(second.serial));
      const done = await slow;
      expect(done.code).toBe(0);
      expect(JSON.parse(done.out).path).toBe("/slow/6000");
    } finally {
      await g.stop();
    }
  }, 90_000);

  test("renewBefore longer than the CA's lifetime falls back to a third of it, with a warning, instead of looping", async () => {
    const g = await startGateway(yaml(["long.acme.test"], "\n      renewBefore: 30"), { dir: tmp(), args: ["--port", String(httpPort)] });
    try {
      const issued = await g.waitForLog((l) => l.event === "acme.issued" && l.domain === "long.acme.test", 30_000);
      const warn = await g.waitForLog((l) => l.event === "acme.renew_before_too_long", 5_000);
      expect(warn.level).toBe("warn");
      const lifetime = Date.parse(String(issued.notAfter)) - Date.now();
      expect(Date.parse(String(issued.renewAt)) - Date.now()).toBeGreaterThan(lifetime / 2);
    } finally {
      await g.stop();
    }
  }, 60_000);

  test("an unreachable ACME server: plain HTTP keeps serving, HTTPS serves the default certificate, one error line per attempt", async () => {
    const closed = await freePort();
    const g = await startGateway(
      `
server:
  stateDir: ./state
  https:
    port: 0
    acme: { directory: "https://127.0.0.1:${closed}/dir", domains: [down.acme.test] }
routes:
  - id: app
    frontend: { domains: [down.acme.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
`,
      { dir: tmp() },
    );
    try {
      const failed = await g.waitForLog((l) => l.event === "acme.order_failed", 45_000);
      expect(failed.level).toBe("error");
      expect(failed.domain).toBe("down.acme.test");
      expect(String((failed.problem as { detail: string }).detail)).toMatch(/ECONNREFUSED|connect|refused/i);
      expect(Date.parse(String(failed.retryAt)) - Date.now()).toBeGreaterThan(30_000);
      expect(g.logs.filter((l) => l.event === "acme.order_failed")).toHaveLength(1);
      const res = await fetch(`${g.url}/ok`, { headers: { host: "down.acme.test" } });
      expect(res.status).toBe(200);
      // The TLS listener is up with the self-signed default certificate.
      const r = await curl(["-k", "-o", "/dev/null", "-w", "%{http_code}", "--resolve", `down.acme.test:${g.httpsPort}:127.0.0.1`, `https://down.acme.test:${g.httpsPort}/ok`]);
      expect(r.out).toBe("200");
      const strict = await curl(["-o", "/dev/null", "--resolve", `down.acme.test:${g.httpsPort}:127.0.0.1`, `https://down.acme.test:${g.httpsPort}/ok`]);
      expect(strict.code).not.toBe(0);
    } finally {
      await g.stop();
    }
  }, 60_000);
});

describe(`key pair certificates from files (${RUNTIME})`, () => {
  function makeCert(dir: string, name: string): { key: string; cert: string } {
    const key = join(dir, `${name}.key`);
    const cert = join(dir, `${name}.crt`);
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
      "/CN=files.secure.test",
      "-addext",
      "subjectAltName=DNS:files.secure.test",
      "-keyout",
      key,
      "-out",
      cert,
    ], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(r.stderr.toString());
    return { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") };
  }

  test("replacing the certificate files (as certbot does) is served after the reload, without a restart", async () => {
    const dir = tmp();
    const work = tmp();
    const first = makeCert(work, "first");
    const second = makeCert(work, "second");
    writeFileSync(join(dir, "tls.key"), first.key);
    writeFileSync(join(dir, "tls.crt"), first.cert);
    const gw = await startGateway(
      `
server:
  https: { port: 0, keyPairs: [site] }
keypairs:
  - id: site
    privateKey: \${file:tls.key}
    certificate: \${file:tls.crt}
`,
      { dir },
    );
    try {
      expect(await servedSerial(gw.httpsPort!, "files.secure.test")).toBe(fileSerial(first.cert));
      // certbot writes new files and swaps them in by rename; the key first, then the certificate.
      writeFileSync(join(work, "next.key"), second.key);
      writeFileSync(join(work, "next.crt"), second.cert);
      renameSync(join(work, "next.key"), join(dir, "tls.key"));
      renameSync(join(work, "next.crt"), join(dir, "tls.crt"));
      await gw.waitForLog((l) => l.event === "tls.certificates_updated", 20_000);
      expect(await servedSerial(gw.httpsPort!, "files.secure.test")).toBe(fileSerial(second.cert));
    } finally {
      await gw.stop();
    }
  }, 60_000);
});
