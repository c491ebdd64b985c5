import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { importKeyPair } from "../../../src/keys/keyring.ts";
import { loadOrCreateKeyPair, StateDirError } from "../../../src/keys/state.ts";

const root = mkdtempSync(join(tmpdir(), "otoroshi-keys-"));
afterAll(() => {
  chmodSync(root, 0o700);
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const freshDir = () => join(root, `case-${++n}`);
const isRoot = process.getuid?.() === 0;

function stateDirError(fn: () => unknown): StateDirError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StateDirError);
    return err as StateDirError;
  }
  throw new Error("expected a StateDirError");
}

describe("loadOrCreateKeyPair", () => {
  test("creates the state directory and a 0600 PKCS#8 key file on first call", () => {
    const dir = join(freshDir(), "nested", "state");
    const result = loadOrCreateKeyPair(dir, "otoroshi-jwt-signing", "ES256");
    expect(result.created).toBe(true);
    expect(result.path).toBe(join(dir, "otoroshi-jwt-signing.key.pem"));
    expect(result.pem).toStartWith("-----BEGIN PRIVATE KEY-----");
    expect(statSync(result.path).mode & 0o777).toBe(0o600);
    expect(importKeyPair("otoroshi-jwt-signing", result.pem).alg).toBe("ES256");
    // The temp file used for the atomic write is gone.
    expect(readdirSync(dir)).toEqual(["otoroshi-jwt-signing.key.pem"]);
  });

  test("reuses the same key on the next start", () => {
    const dir = freshDir();
    const first = loadOrCreateKeyPair(dir, "signing", "RS256");
    const second = loadOrCreateKeyPair(dir, "signing", "RS256");
    expect(second).toEqual({ pem: first.pem, path: first.path, created: false });
  });

  test("keeps an existing key even when asked for another alg (the alg comes from the key)", () => {
    const dir = freshDir();
    const first = loadOrCreateKeyPair(dir, "signing", "EdDSA");
    expect(loadOrCreateKeyPair(dir, "signing", "ES384").pem).toBe(first.pem);
  });

  test("names the path when the existing file is not a usable key", () => {
    const dir = freshDir();
    mkdirSync(dir);
    writeFileSync(join(dir, "signing.key.pem"), "not a key\n");
    const message = stateDirError(() => loadOrCreateKeyPair(dir, "signing", "ES256")).message;
    expect(message).toStartWith(`server.stateDir: ${join(dir, "signing.key.pem")} does not hold a usable private key`);
  });

  test("refuses an id that would escape the state directory", () => {
    stateDirError(() => loadOrCreateKeyPair(freshDir(), "../evil", "ES256"));
  });

  test("names server.stateDir when the directory cannot be created (a file is in the way)", () => {
    const file = join(root, `file-${++n}`);
    writeFileSync(file, "");
    const dir = join(file, "state");
    const message = stateDirError(() => loadOrCreateKeyPair(dir, "otoroshi-jwt-signing", "ES256")).message;
    expect(message).toBe(
      `server.stateDir: cannot write the generated key pair "otoroshi-jwt-signing" to ${dir} (ENOTDIR: not a directory); ` +
        "set server.stateDir to a writable directory or declare the key pair under keypairs:",
    );
  });

  test("says not a directory when server.stateDir is a regular file", () => {
    const file = join(root, `file-${++n}`);
    writeFileSync(file, "");
    expect(stateDirError(() => loadOrCreateKeyPair(file, "signing", "ES256")).message).toContain(`to ${file} (ENOTDIR: not a directory)`);
  });

  // root ignores directory permissions, so this case only means something for other users.
  test.skipIf(isRoot)("names server.stateDir when the directory is read-only", () => {
    const dir = freshDir();
    mkdirSync(dir);
    chmodSync(dir, 0o500);
    try {
      const message = stateDirError(() => loadOrCreateKeyPair(dir, "otoroshi-jwt-signing", "ES256")).message;
      expect(message).toStartWith(`server.stateDir: cannot write the generated key pair "otoroshi-jwt-signing" to ${dir} (EACCES`);
    } finally {
      chmodSync(dir, 0o700);
    }
  });
});
