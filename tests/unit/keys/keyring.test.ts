import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { createKeyring, importKeyPair, jwks, KeyImportError } from "../../../src/keys/keyring.ts";
import type { JwsAlg } from "../../../src/keys/keyring.ts";

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/keys/${name}`, import.meta.url), "utf8");

const KEY_TYPES: [string, string, JwsAlg][] = [
  ["RSA 2048", "rsa2048.key.pem", "RS256"],
  ["EC P-256", "ec-p256.key.pem", "ES256"],
  ["EC P-384", "ec-p384.key.pem", "ES384"],
  ["EC P-521", "ec-p521.key.pem", "ES512"],
  ["Ed25519", "ed25519.key.pem", "EdDSA"],
];
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

function importError(fn: () => unknown): KeyImportError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(KeyImportError);
    return err as KeyImportError;
  }
  throw new Error("expected a KeyImportError");
}

describe("importKeyPair", () => {
  for (const [name, file, alg] of KEY_TYPES) {
    test(`derives ${alg} from an ${name} key and publishes only its public half`, () => {
      const kp = importKeyPair("k1", fixture(file));
      expect(kp.alg).toBe(alg);
      expect(kp.id).toBe("k1");
      expect(kp.privateKey.type).toBe("private");
      expect(kp.publicKey.type).toBe("public");
      expect(kp.publicJwk).toMatchObject({ kid: "k1", alg, use: "sig" });
      for (const member of PRIVATE_MEMBERS) expect(kp.publicJwk).not.toHaveProperty(member);
      expect(Object.isFrozen(kp)).toBe(true);
      expect(Object.isFrozen(kp.publicJwk)).toBe(true);
    });
  }

  test("publishes the JWK members RFC 7518 defines for each key type", () => {
    expect(Object.keys(importKeyPair("r", fixture("rsa2048.key.pem")).publicJwk).sort()).toEqual(["alg", "e", "kid", "kty", "n", "use"]);
    expect(importKeyPair("e", fixture("ec-p521.key.pem")).publicJwk).toMatchObject({ kty: "EC", crv: "P-521" });
    expect(Object.keys(importKeyPair("e", fixture("ec-p384.key.pem")).publicJwk).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x", "y"]);
    expect(importKeyPair("o", fixture("ed25519.key.pem")).publicJwk).toMatchObject({ kty: "OKP", crv: "Ed25519" });
  });

  test("accepts PKCS#1 and SEC1 PEMs and reads the same key as from PKCS#8", () => {
    const rsa = importKeyPair("r", fixture("rsa2048.pkcs1.key.pem"));
    expect(rsa.publicJwk).toEqual(importKeyPair("r", fixture("rsa2048.key.pem")).publicJwk);
    const ec = importKeyPair("e", fixture("ec-p256.sec1.key.pem"));
    expect(ec.publicJwk).toEqual(importKeyPair("e", fixture("ec-p256.key.pem")).publicJwk);
  });

  test("accepts an EC key preceded by an EC PARAMETERS block", () => {
    const pem = "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + fixture("ec-p256.sec1.key.pem");
    expect(importKeyPair("e", pem).alg).toBe("ES256");
  });

  test("rejects a 1024-bit RSA key, saying how many bits are required", () => {
    expect(importError(() => importKeyPair("k", fixture("rsa1024.key.pem"))).message).toBe(
      "RSA key is 1024 bits; at least 2048 are required",
    );
  });

  test("rejects the secp256k1 curve by name", () => {
    expect(importError(() => importKeyPair("k", fixture("ec-secp256k1.key.pem"))).message).toStartWith(
      "unsupported EC curve secp256k1; use P-256, P-384 or P-521",
    );
  });

  test("rejects X448 and Ed448 keys by type name", () => {
    expect(importError(() => importKeyPair("k", fixture("x448.key.pem"))).message).toStartWith("unsupported key type x448");
    expect(importError(() => importKeyPair("k", fixture("ed448.key.pem"))).message).toStartWith("unsupported key type ed448");
  });

  test("rejects encrypted keys (PKCS#8 and legacy PEM) with the command that decrypts them", () => {
    for (const file of ["ec-p256.encrypted.key.pem", "rsa2048.pkcs1-encrypted.key.pem"]) {
      const message = importError(() => importKeyPair("k", fixture(file))).message;
      expect(message).toContain("the private key is encrypted");
      expect(message).toContain("openssl pkcs8 -topk8 -nocrypt");
    }
  });

  test("rejects a PEM that is not a private key, naming what it found", () => {
    expect(importError(() => importKeyPair("k", fixture("localhost.cert.pem"))).message).toBe(
      "expected a private key but found 'BEGIN CERTIFICATE'",
    );
    expect(importError(() => importKeyPair("k", "hello")).message).toContain("no '-----BEGIN");
  });

  test("rejects other private key formats with the openssl command that converts them", () => {
    const dsa = "-----BEGIN DSA PRIVATE KEY-----\nAAAA\n-----END DSA PRIVATE KEY-----\n";
    expect(importError(() => importKeyPair("k", dsa)).message).toBe(
      "not a PKCS#8 PEM private key (found 'BEGIN DSA PRIVATE KEY'; convert with: openssl pkcs8 -topk8 -nocrypt -in key.pem)",
    );
    const ssh = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
    expect(importError(() => importKeyPair("k", ssh)).message).toContain("ssh-keygen -p -m PKCS8");
  });

  test("rejects a corrupted PKCS#8 body with a KeyImportError", () => {
    const broken = "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n";
    expect(importError(() => importKeyPair("k", broken)).message).toStartWith("cannot read the private key");
  });

  test("keeps a matching certificate chain and its server names", () => {
    const kp = importKeyPair("tls", fixture("ec-p256.key.pem"), fixture("localhost-chain.cert.pem"));
    expect(kp.certificate?.serverNames).toEqual(["localhost", "127.0.0.1", "::1"]);
    expect(kp.certificate?.pem).toBe(fixture("localhost-chain.cert.pem"));
  });

  test("rejects a certificate made for another key", () => {
    for (const key of ["ec-p256-other.key.pem", "rsa2048.key.pem"]) {
      expect(importError(() => importKeyPair("tls", fixture(key), fixture("localhost.cert.pem"))).message).toBe(
        "certificate does not match the private key",
      );
    }
  });
});

describe("createKeyring and jwks", () => {
  const rsa = importKeyPair("rsa", fixture("rsa2048.key.pem"));
  const ec = importKeyPair("ec", fixture("ec-p256.key.pem"));
  const ed = importKeyPair("ed", fixture("ed25519.key.pem"));

  test("finds key pairs by kid and lists them in order", () => {
    const ring = createKeyring([rsa, ec, ed]);
    expect(ring.get("ec")).toBe(ec);
    expect(ring.get("nope")).toBeUndefined();
    expect(ring.all.map((k) => k.id)).toEqual(["rsa", "ec", "ed"]);
    expect(Object.isFrozen(ring)).toBe(true);
    expect(Object.isFrozen(ring.all)).toBe(true);
  });

  test("refuses two different key pairs with the same id", () => {
    const other = importKeyPair("ec", fixture("ec-p384.key.pem"));
    expect(importError(() => createKeyring([ec, other])).message).toBe('duplicate key pair id "ec"');
    expect(createKeyring([ec, ec]).all).toHaveLength(1);
  });

  test("JWKS lists each public key once, in order, with use sig and no private member", () => {
    const set = jwks([rsa, ec, rsa, ed]);
    expect(set.keys.map((k) => k.kid)).toEqual(["rsa", "ec", "ed"]);
    for (const key of set.keys) {
      expect(key.use).toBe("sig");
      for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
    }
    expect(JSON.parse(JSON.stringify(set))).toEqual(set);
  });
});
