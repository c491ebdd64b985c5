// The Bun adapter's TLS listener: certificates swapped while it runs, and a port that stays
// exclusive to one gateway although the listener uses SO_REUSEPORT for the swap.
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { runtime } from "../../../src/runtime/bun.ts";
import type { TlsCert } from "../../../src/runtime/types.ts";

const dir = mkdtempSync(join(tmpdir(), "oto-tls-swap-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cert(name: string): TlsCert {
  const k = join(dir, `${name}.key`);
  const c = join(dir, `${name}.crt`);
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
    "/CN=swap.test",
    "-addext",
    "subjectAltName=DNS:swap.test",
    "-keyout",
    k,
    "-out",
    c,
  ], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  return { cert: readFileSync(c, "utf8"), key: readFileSync(k, "utf8"), serverNames: ["swap.test"] };
}

function serial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: "127.0.0.1", port, servername: "swap.test", rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate().serialNumber);
      s.end();
    });
    s.on("error", reject);
  });
}

describe("Bun TLS listener", () => {
  const a = cert("a");
  const b = cert("b");

  test("updateTls: new handshakes get the new certificate, on the same port", async () => {
    const h = await runtime.serve({ hostname: "127.0.0.1", port: 0, tls: [a], handler: () => new Response("ok") });
    try {
      const before = await serial(h.port);
      await h.updateTls!([b]);
      const after = await serial(h.port);
      expect(after).not.toBe(before);
      expect(after).toBe(await serial(h.port));
    } finally {
      await h.stop(true);
    }
  });

  test("a second TLS listener on a port already taken fails, SO_REUSEPORT notwithstanding", async () => {
    const h = await runtime.serve({ hostname: "127.0.0.1", port: 0, tls: [a], handler: () => new Response("ok") });
    try {
      await expect(runtime.serve({ hostname: "127.0.0.1", port: h.port, tls: [b], handler: () => new Response("x") })).rejects.toThrow();
      expect(await serial(h.port)).toBe(await serial(h.port));
    } finally {
      await h.stop(true);
    }
  });
});
