import { describe, expect, test } from "bun:test";
import { createPublicKey } from "node:crypto";
import { parse } from "yaml";
import { generateKeyPairPem, keygenYaml } from "../../../src/keys/generate.ts";
import type { GenAlg } from "../../../src/keys/generate.ts";
import { importKeyPair } from "../../../src/keys/keyring.ts";
import { signJwt, verifyJwt } from "../../../src/keys/jwt.ts";

const ALGS: GenAlg[] = ["RS256", "ES256", "ES384", "ES512", "EdDSA"];

describe("generateKeyPairPem", () => {
  for (const alg of ALGS) {
    test(`generates a PKCS#8 / SPKI ${alg} key pair that imports back as ${alg}`, () => {
      const { privateKeyPem, publicKeyPem } = generateKeyPairPem(alg);
      expect(privateKeyPem).toStartWith("-----BEGIN PRIVATE KEY-----\n");
      expect(publicKeyPem).toStartWith("-----BEGIN PUBLIC KEY-----\n");
      const kp = importKeyPair("gen", privateKeyPem);
      expect(kp.alg).toBe(alg);
      expect(kp.publicKey.equals(createPublicKey(publicKeyPem))).toBe(true);
    });
  }

  test("makes 2048-bit RSA keys", () => {
    const { privateKeyPem } = generateKeyPairPem("RS256");
    expect(importKeyPair("gen", privateKeyPem).privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });
});

describe("keygenYaml", () => {
  for (const alg of ALGS) {
    test(`prints a ${alg} keypairs item that the yaml package parses and importKeyPair accepts`, () => {
      const snippet = keygenYaml("my-key", alg);
      const config = parse(`keypairs:\n${snippet}`) as { keypairs: { id: string; privateKey: string }[] };
      expect(config.keypairs).toHaveLength(1);
      const [entry] = config.keypairs;
      expect(Object.keys(entry!)).toEqual(["id", "privateKey"]);
      expect(entry!.id).toBe("my-key");
      const kp = importKeyPair(entry!.id, entry!.privateKey);
      expect(kp.alg).toBe(alg);
      const token = signJwt(kp, { aud: "a", exp: 2_000_000_000 });
      expect(verifyJwt(token, { now: 1_900_000_000, leewaySec: 0, audience: "a", issuer: () => true, resolveKey: () => kp }).ok).toBe(true);
    });
  }

  test("pastes under an indented keypairs: list too", () => {
    const indented = keygenYaml("k", "ES256")
      .split("\n")
      .map((l) => (l ? `  ${l}` : l))
      .join("\n");
    const config = parse(`server: {}\nkeypairs:\n${indented}`) as { keypairs: { privateKey: string }[] };
    expect(importKeyPair("k", config.keypairs[0]!.privateKey).alg).toBe("ES256");
  });

  test("quotes ids YAML would read as something other than a string", () => {
    for (const id of ["true", "null", "123", "1e3", "a:b", "on"]) {
      const config = parse(keygenYaml(id, "EdDSA")) as { id: unknown }[];
      expect(config[0]!.id).toBe(id);
    }
  });
});
