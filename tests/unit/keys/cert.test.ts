import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { parseCertificateChain } from "../../../src/keys/cert.ts";
import { KeyImportError } from "../../../src/keys/keyring.ts";

const fixture = (name: string) => readFileSync(new URL(`../../fixtures/keys/${name}`, import.meta.url), "utf8");

describe("parseCertificateChain", () => {
  test("reads DNS and IP subjectAltNames, with IPv6 in its compressed form", () => {
    const cert = parseCertificateChain(fixture("localhost.cert.pem"));
    expect(cert.serverNames).toEqual(["localhost", "127.0.0.1", "::1"]);
    expect(cert.subject).toContain("CN=localhost");
  });

  test("lowercases DNS names and keeps wildcards", () => {
    expect(parseCertificateChain(fixture("wildcard.example.test.cert.pem")).serverNames).toEqual(["*.example.test"]);
  });

  test("falls back to the subject CN only when there is no subjectAltName", () => {
    expect(parseCertificateChain(fixture("cn-only.cert.pem")).serverNames).toEqual(["cn-only.example.test"]);
  });

  test("describes the leaf of a chain and keeps the whole chain PEM", () => {
    const pem = fixture("localhost-chain.cert.pem");
    const cert = parseCertificateChain(pem);
    expect(cert.serverNames).toContain("localhost");
    expect(cert.pem).toBe(pem);
  });

  test("gives the validity period as dates", () => {
    const cert = parseCertificateChain(fixture("localhost.cert.pem"));
    expect(cert.notBefore).toBeInstanceOf(Date);
    expect(cert.notAfter.getTime()).toBeGreaterThan(cert.notBefore.getTime());
    // The fixtures were made with -days 3650.
    expect(Math.round((cert.notAfter.getTime() - cert.notBefore.getTime()) / 86_400_000)).toBe(3650);
  });

  test("rejects garbage, a key and a corrupted certificate with a KeyImportError", () => {
    const cases: [string, string][] = [
      ["not a pem", "no '-----BEGIN CERTIFICATE-----' line found"],
      [fixture("ec-p256.key.pem"), "found 'BEGIN PRIVATE KEY', expected 'BEGIN CERTIFICATE'"],
      ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot read the certificate"],
      [fixture("localhost.cert.pem") + "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "certificate #2 of the chain"],
    ];
    for (const [pem, message] of cases) {
      expect(() => parseCertificateChain(pem)).toThrow(KeyImportError);
      expect(() => parseCertificateChain(pem)).toThrow(message);
    }
  });
});
