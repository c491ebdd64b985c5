// Pebble, the ACME test CA (Debian package `pebble`), with pebble-challtestsrv as its DNS
// server answering 127.0.0.1 for every name: both on loopback, free ports, a TLS certificate
// made with openssl, started and stopped by PID. Tests skip with a notice when it is absent.
import { spawn, spawnSync, type Subprocess } from "bun";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./redis.ts";

export const PEBBLE = "/usr/bin/pebble";
export const CHALLTESTSRV = "/usr/bin/pebble-challtestsrv";
export const hasPebble = existsSync(PEBBLE) && existsSync(CHALLTESTSRV) && spawnSync(["openssl", "version"]).exitCode === 0;

export interface Pebble {
  /** ACME directory URL. */
  directory: string;
  /** PEM of Pebble's own TLS certificate: what server.https.acme.directoryCa trusts. */
  tlsCaFile: string;
  /** PEM of the root that signs issued certificates (management /roots/0). */
  rootFile: string;
  /** Orders Pebble accepted so far (from its log). */
  orders(): number;
  log(): string;
  stop(): Promise<void>;
}

async function waitUntil(what: string, ok: () => Promise<boolean>, exited: Promise<number>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let dead = false;
  void exited.then(() => (dead = true));
  while (Date.now() < until && !dead) {
    if (await ok().catch(() => false)) return;
    await Bun.sleep(50);
  }
  throw new Error(`${what} did not start`);
}

function collect(proc: Subprocess<"ignore", "pipe", "pipe">, into: string[]): void {
  for (const stream of [proc.stdout, proc.stderr]) {
    void (async () => {
      const dec = new TextDecoder();
      for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) into.push(dec.decode(chunk, { stream: true }));
    })();
  }
}

/**
 * httpPort: where Pebble's validation authority sends HTTP-01 requests (the gateway's HTTP port).
 * validitySeconds: lifetime of the certificates it issues.
 */
export async function startPebble(opts: { httpPort: number; validitySeconds?: number }): Promise<Pebble> {
  const dir = mkdtempSync(join(tmpdir(), "oto-pebble-"));
  const key = join(dir, "tls.key");
  const cert = join(dir, "tls.crt");
  const made = spawnSync([
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
    "/CN=pebble",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout",
    key,
    "-out",
    cert,
  ], { stderr: "pipe" });
  if (made.exitCode !== 0) throw new Error(made.stderr.toString());
  const [acmePort, mgmtPort, dnsPort, ctsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = join(dir, "pebble.json");
  writeFileSync(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: cert,
        privateKey: key,
        httpPort: opts.httpPort,
        tlsPort: await freePort(),
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
        certificateValidityPeriod: opts.validitySeconds ?? 7 * 86_400,
      },
    }),
  );
  const out: string[] = [];
  const dns = spawn([
    CHALLTESTSRV,
    "-defaultIPv4",
    "127.0.0.1",
    "-defaultIPv6",
    "",
    "-dns01",
    `127.0.0.1:${dnsPort}`,
    "-http01",
    "",
    "-https01",
    "",
    "-tlsalpn01",
    "",
    "-management",
    `127.0.0.1:${ctsPort}`,
  ], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  collect(dns, out);
  // PEBBLE_VA_NOSLEEP: validate at once; nonces are still rejected at random (5 %), on purpose.
  const pebble = spawn([PEBBLE, "-config", config, "-dnsserver", `127.0.0.1:${dnsPort}`], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_VA_ALWAYS_VALID: "" },
  });
  collect(pebble, out);
  const ca = readFileSync(cert, "utf8");
  const stopAll = async () => {
    for (const p of [pebble, dns]) p.kill("SIGTERM");
    await Promise.all([pebble.exited, dns.exited]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitUntil("pebble", async () => (await fetch(`https://127.0.0.1:${acmePort}/dir`, { tls: { ca } })).ok, pebble.exited);
    await waitUntil("pebble-challtestsrv", async () => (await fetch(`http://127.0.0.1:${ctsPort}/`)).status > 0, dns.exited);
  } catch (e) {
    await stopAll();
    throw new Error(`${(e as Error).message}:\n${out.join("")}`);
  }
  const root = await (await fetch(`https://127.0.0.1:${mgmtPort}/roots/0`, { tls: { ca } })).text();
  const rootFile = join(dir, "root.pem");
  writeFileSync(rootFile, root);
  return {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    tlsCaFile: cert,
    rootFile,
    orders: () => out.join("").split("Added order").length - 1,
    log: () => out.join(""),
    stop: stopAll,
  };
}
