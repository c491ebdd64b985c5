// ACME state on disk, under <stateDir>/acme/<directory>/: the account key and, per name, the
// certificate's private key and chain. One folder per ACME directory, so that moving from
// Let's Encrypt staging to production orders real certificates instead of serving staging ones.
// Files are 0600 in 0700 folders and replaced atomically (write beside, fsync, rename), so a
// crash leaves the old or the new file, never half of one.
import { createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";

export interface StoredCertificate {
  domain: string;
  /** PEM chain, leaf first, as the CA sent it. */
  chain: string;
  /** PKCS#8 PEM. */
  key: string;
  notBefore: number;
  notAfter: number;
  serial: string;
}

/** "https://acme-v02.api.letsencrypt.org/directory" → "acme-v02.api.letsencrypt.org_directory". */
export function directoryFolder(directory: string): string {
  const u = new URL(directory);
  return `${u.host}${u.pathname}`.replace(/[^A-Za-z0-9.-]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 120) || "acme";
}

export function writePrivateFile(path: string, content: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600); // the umask may have masked bits off, never on; make it exact anyway
  renameSync(tmp, path);
}

export class AcmeStore {
  readonly dir: string;

  constructor(stateDir: string, directory: string) {
    this.dir = join(stateDir, "acme", directoryFolder(directory));
  }

  private ensureDir(path: string): void {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    chmodSync(path, 0o700);
  }

  /** The account key (ES256, RFC 8555 §6.2), created on first use. */
  accountKey(): string {
    const path = join(this.dir, "account.key.pem");
    if (existsSync(path)) return readFileSync(path, "utf8");
    this.ensureDir(this.dir);
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = privateKey.export({ format: "pem", type: "pkcs8" }) as string;
    writePrivateFile(path, pem);
    return pem;
  }

  private paths(domain: string): { key: string; chain: string } {
    const base = join(this.dir, "certificates", domain);
    return { key: `${base}.key.pem`, chain: `${base}.chain.pem` };
  }

  /** The stored certificate for a name, or null (absent, unreadable, or key and chain not a pair). */
  load(domain: string): StoredCertificate | null {
    const p = this.paths(domain);
    if (!existsSync(p.key) || !existsSync(p.chain)) return null;
    try {
      return describe(domain, readFileSync(p.chain, "utf8"), readFileSync(p.key, "utf8"));
    } catch {
      return null;
    }
  }

  /** Key first, then the chain: a crash in between leaves a mismatched pair, which load() ignores. */
  save(domain: string, chain: string, key: string): StoredCertificate {
    const stored = describe(domain, chain, key);
    this.ensureDir(this.dir);
    this.ensureDir(join(this.dir, "certificates"));
    const p = this.paths(domain);
    writePrivateFile(p.key, key);
    writePrivateFile(p.chain, chain);
    return stored;
  }
}

/** Upper-case hex without leading zeros: runtimes disagree on the padding. */
export const serialHex = (serial: string) => serial.toUpperCase().replace(/^0+(?=.)/, "");

/** Reads the leaf; throws when the chain is unreadable or does not belong to the key. */
export function describe(domain: string, chain: string, key: string): StoredCertificate {
  const leafPem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(chain)?.[0];
  if (!leafPem) throw new Error("no certificate in the chain");
  const leaf = new X509Certificate(leafPem);
  if (!leaf.checkPrivateKey(createPrivateKey(key))) throw new Error("the certificate does not match its key");
  return {
    domain,
    chain,
    key,
    notBefore: (leaf.validFromDate ?? new Date(leaf.validFrom)).getTime(),
    notAfter: (leaf.validToDate ?? new Date(leaf.validTo)).getTime(),
    serial: serialHex(leaf.serialNumber),
  };
}
