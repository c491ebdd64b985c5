import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AcmeStore, directoryFolder } from "../../../src/tls/acme/store.ts";

const dir = mkdtempSync(join(tmpdir(), "oto-acme-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function selfSigned(name: string): { key: string; cert: string } {
  const k = join(dir, `${name}.key`);
  const c = join(dir, `${name}.crt`);
  const r = spawnSync(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "3", "-subj", `/CN=${name}`, "-keyout", k, "-out", c], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  const out = { key: readFileSync(k, "utf8"), cert: readFileSync(c, "utf8") };
  rmSync(k);
  rmSync(c);
  return out;
}

describe("ACME store", () => {
  test("one folder per directory URL", () => {
    expect(directoryFolder("https://acme-v02.api.letsencrypt.org/directory")).toBe("acme-v02.api.letsencrypt.org_directory");
    expect(directoryFolder("https://acme-staging-v02.api.letsencrypt.org/directory")).not.toBe(directoryFolder("https://acme-v02.api.letsencrypt.org/directory"));
    expect(directoryFolder("https://127.0.0.1:14000/dir")).toBe("127.0.0.1_14000_dir");
  });

  test("the account key is created once, 0600 in a 0700 folder, and read back", () => {
    const store = new AcmeStore(join(dir, "s1"), "https://ca.test/dir");
    const key = store.accountKey();
    expect(key).toContain("BEGIN PRIVATE KEY");
    expect(store.accountKey()).toBe(key);
    expect(statSync(join(store.dir, "account.key.pem")).mode & 0o777).toBe(0o600);
    expect(statSync(store.dir).mode & 0o777).toBe(0o700);
  });

  test("a saved certificate loads back with its dates and serial; no temporary file is left", () => {
    const store = new AcmeStore(join(dir, "s2"), "https://ca.test/dir");
    const { key, cert } = selfSigned("one.test");
    const saved = store.save("one.test", cert, key);
    const loaded = store.load("one.test")!;
    expect(loaded).toEqual(saved);
    expect(loaded.notAfter - loaded.notBefore).toBe(3 * 86_400_000);
    const files = readdirSync(join(store.dir, "certificates"));
    expect(files.sort()).toEqual(["one.test.chain.pem", "one.test.key.pem"]);
    for (const f of files) expect(statSync(join(store.dir, "certificates", f)).mode & 0o777).toBe(0o600);
  });

  test("a key and chain that are not a pair (a crash between the two writes) count as no certificate", () => {
    const store = new AcmeStore(join(dir, "s3"), "https://ca.test/dir");
    const a = selfSigned("a.test");
    const b = selfSigned("b.test");
    store.save("x.test", a.cert, a.key);
    writeFileSync(join(store.dir, "certificates", "x.test.key.pem"), b.key);
    expect(store.load("x.test")).toBeNull();
    expect(() => store.save("y.test", a.cert, b.key)).toThrow("does not match");
    expect(store.load("absent.test")).toBeNull();
  });
});
