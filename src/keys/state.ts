// The default signing key pair is generated on first start and kept in server.stateDir, so
// tokens signed before a restart still verify after it.
import { randomBytes } from "node:crypto";
import { chmodSync, closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { pid } from "node:process";
import { generateKeyPairPem } from "./generate.ts";
import type { GenAlg } from "./generate.ts";
import { importKeyPair, KeyImportError } from "./keyring.ts";

export class StateDirError extends Error {
  override name = "StateDirError";
}

export function loadOrCreateKeyPair(stateDir: string, id: string, alg: GenAlg): { pem: string; path: string; created: boolean } {
  // The id becomes a file name: never let it climb out of the state directory.
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(id)) {
    throw new StateDirError(`key pair id "${id}" cannot be used as a file name in server.stateDir`);
  }
  const path = join(stateDir, `${id}.key.pem`);
  const existing = readExisting(path);
  if (existing !== undefined) return { pem: existing, path, created: false };

  const { privateKeyPem } = generateKeyPairPem(alg);
  try {
    makeDir(stateDir);
    const winner = writeAtomically(path, privateKeyPem);
    if (winner !== undefined) return { pem: winner, path, created: false };
  } catch (err) {
    if (err instanceof StateDirError) throw err;
    throw new StateDirError(
      `server.stateDir: cannot write the generated key pair "${id}" to ${stateDir} (${describe(err)}); ` +
        "set server.stateDir to a writable directory or declare the key pair under keypairs:",
    );
  }
  return { pem: privateKeyPem, path, created: true };
}

function readExisting(path: string): string | undefined {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    // ENOTDIR here means stateDir itself is a file: let the write path report it.
    if ((err as NodeJS.ErrnoException).code === "ENOTDIR") return undefined;
    throw new StateDirError(`server.stateDir: cannot read the key pair file ${path} (${describe(err)})`);
  }
  try {
    importKeyPair("state", pem);
  } catch (err) {
    if (!(err instanceof KeyImportError)) throw err;
    throw new StateDirError(
      `server.stateDir: ${path} does not hold a usable private key (${err.message}); fix or delete it to generate a new one`,
    );
  }
  return pem;
}

function makeDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    // mkdir -p on an existing regular file says EEXIST, which reads as if all were fine.
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    throw Object.assign(new Error("ENOTDIR: not a directory"), { code: "ENOTDIR" });
  }
}

/**
 * Write to a private temp file, fsync, then publish it under its final name in one step, so a
 * crash never leaves a half-written key. link() refuses to replace an existing file: when two
 * processes start together, the second one adopts the first one's key instead of overwriting
 * it. Returns that other key in this case; undefined when ours was published.
 */
function writeAtomically(path: string, pem: string): string | undefined {
  const tmp = `${path}.${pid}.${randomBytes(6).toString("hex")}.tmp`;
  const fd = openSync(tmp, "wx", 0o600);
  try {
    try {
      writeSync(fd, pem);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, 0o600); // the umask can only remove bits; this makes the mode explicit
    try {
      linkSync(tmp, path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EEXIST") return readFileSync(path, "utf8");
      // Some file systems (FAT, some network mounts) have no hard links: rename still is atomic.
      if (code !== "EPERM" && code !== "ENOTSUP" && code !== "ENOSYS" && code !== "EOPNOTSUPP") throw err;
      renameSync(tmp, path);
    }
    return undefined;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed, or never created
    }
  }
}

/** "EROFS: read-only file system" without the ", open '/path'" tail node:fs appends. */
function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const message = String(e?.message ?? err);
  const head = message.split(/, (?:open|mkdir|link|rename|chmod|write|fsync|close|read) /)[0]!;
  return e?.code && !head.startsWith(e.code) ? `${e.code}: ${head}` : head;
}
