// Key pairs are imported once, when a config is compiled, into node:crypto KeyObjects; signing
// and verifying (jwt.ts) then never parse a PEM again.
import { createPrivateKey, createPublicKey } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { Buffer } from "node:buffer";
import { KeyImportError, parseCertificateChain } from "./cert.ts";
import type { ParsedCertificate } from "./cert.ts";

export { KeyImportError };

export type JwsAlg = "RS256" | "ES256" | "ES384" | "ES512" | "EdDSA";

export interface KeyPair {
  /** Also the JWT `kid`. */
  readonly id: string;
  readonly alg: JwsAlg;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Public members only, plus kid, alg and use: "sig". */
  readonly publicJwk: Readonly<Record<string, unknown>>;
  readonly certificate?: ParsedCertificate;
}

export interface Keyring {
  get(kid: string): KeyPair | undefined;
  readonly all: readonly KeyPair[];
}

// RFC 7518 §3.4: the ECDSA algorithm is fixed by the curve, so it is derived, never configured.
// Runtimes report either the OpenSSL names or the NIST names; both are accepted.
const EC_ALGS: Record<string, JwsAlg> = {
  prime256v1: "ES256",
  "P-256": "ES256",
  secp384r1: "ES384",
  "P-384": "ES384",
  secp521r1: "ES512",
  "P-521": "ES512",
};

// RFC 7517 §4 / RFC 7518 §6 / RFC 8037 §2: the public members per key type. The JWK is built
// from this allow-list, so a private member (d, p, q, dp, dq, qi, oth) can never leak.
const PUBLIC_MEMBERS: Record<string, readonly string[]> = {
  RSA: ["kty", "n", "e"],
  EC: ["kty", "crv", "x", "y"],
  OKP: ["kty", "crv", "x"],
};

const TO_PKCS8 = "convert with: openssl pkcs8 -topk8 -nocrypt -in key.pem";
const ACCEPTED_LABELS = new Set(["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]);
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

export function importKeyPair(id: string, privateKeyPem: string, certificatePem?: string): KeyPair {
  if (typeof id !== "string" || id === "") throw new KeyImportError("a key pair needs a non-empty id");
  const privateKey = readPrivateKey(privateKeyPem);
  const alg = algFor(privateKey);
  const publicKey = createPublicKey(privateKey);
  const exported = publicKey.export({ format: "jwk" }) as Record<string, unknown>;
  const jwk: Record<string, unknown> = {};
  for (const member of PUBLIC_MEMBERS[String(exported.kty)] ?? []) jwk[member] = exported[member];
  // RFC 7517 §4.2/§4.4/§4.5: use "sig" so clients never take these keys for encryption.
  Object.assign(jwk, { kid: id, alg, use: "sig" });

  let certificate: ParsedCertificate | undefined;
  if (certificatePem !== undefined) {
    certificate = parseCertificateChain(certificatePem);
    if (!certificate.publicKey.equals(publicKey)) {
      throw new KeyImportError("certificate does not match the private key");
    }
  }
  const pair: KeyPair = { id, alg, privateKey, publicKey, publicJwk: Object.freeze(jwk) };
  return Object.freeze(certificate ? { ...pair, certificate } : pair);
}

function readPrivateKey(pem: string): KeyObject {
  if (typeof pem !== "string") throw new KeyImportError("the private key must be a PEM string");
  const blocks = [...pem.matchAll(PEM_BLOCK)];
  // `openssl ecparam -genkey` writes an EC PARAMETERS block first: look for the key itself.
  const block = blocks.find((b) => b[1]!.endsWith("PRIVATE KEY")) ?? blocks[0];
  if (!block) throw new KeyImportError("not a PEM private key (no '-----BEGIN ...-----' line found)");
  const label = block[1]!;
  // RFC 5958 §3 EncryptedPrivateKeyInfo, or a legacy OpenSSL "Proc-Type: 4,ENCRYPTED" header.
  if (label === "ENCRYPTED PRIVATE KEY" || /Proc-Type:\s*4,\s*ENCRYPTED/.test(block[0])) {
    throw new KeyImportError(
      "the private key is encrypted; the gateway cannot ask for a passphrase " +
        "(decrypt it with: openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.pk8.pem)",
    );
  }
  if (!label.endsWith("PRIVATE KEY")) {
    throw new KeyImportError(`expected a private key but found 'BEGIN ${label}'`);
  }
  if (label === "OPENSSH PRIVATE KEY") {
    throw new KeyImportError(
      "not a PKCS#8 PEM private key (found 'BEGIN OPENSSH PRIVATE KEY'; convert a copy with: ssh-keygen -p -m PKCS8 -f key)",
    );
  }
  if (!ACCEPTED_LABELS.has(label)) {
    throw new KeyImportError(`not a PKCS#8 PEM private key (found 'BEGIN ${label}'; ${TO_PKCS8})`);
  }
  try {
    return createPrivateKey({ key: block[0], format: "pem" });
  } catch (err) {
    const known = unsupportedKeyName(block[0]);
    if (known === "secp256k1") throw unsupportedCurve(known);
    if (known) throw unsupportedType(known);
    throw new KeyImportError(`cannot read the private key (${(err as Error).message})`);
  }
}

function algFor(key: KeyObject): JwsAlg {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === "rsa") {
    const bits = details.modulusLength ?? 0;
    // RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used with these algorithms."
    if (bits < 2048) throw new KeyImportError(`RSA key is ${bits} bits; at least 2048 are required`);
    return "RS256";
  }
  if (type === "ec") {
    const curve = details.namedCurve ?? "unknown";
    const alg = EC_ALGS[curve];
    if (!alg) throw unsupportedCurve(curve);
    return alg;
  }
  // RFC 8037 §3.1: Ed25519 signs as "EdDSA". Ed448 is left out: BoringSSL-based runtimes cannot use it.
  if (type === "ed25519") return "EdDSA";
  throw unsupportedType(type ?? "unknown");
}

const unsupportedCurve = (curve: string) => new KeyImportError(`unsupported EC curve ${curve}; use P-256, P-384 or P-521 (RFC 7518 §3.4)`);
const unsupportedType = (type: string) => new KeyImportError(`unsupported key type ${type}; use RSA (2048 bits or more), EC (P-256, P-384, P-521) or Ed25519`);

// BoringSSL-based runtimes cannot even parse some key types that OpenSSL reads; name them from
// the algorithm or curve OID in the DER so every runtime gives the same, useful message.
const UNSUPPORTED_OIDS: [string, number[]][] = [
  ["secp256k1", [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a]],
  ["x25519", [0x06, 0x03, 0x2b, 0x65, 0x6e]],
  ["x448", [0x06, 0x03, 0x2b, 0x65, 0x6f]],
  ["ed448", [0x06, 0x03, 0x2b, 0x65, 0x71]],
  ["dsa", [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01]],
];

function unsupportedKeyName(pemBlock: string): string | undefined {
  const body = pemBlock.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  const der = Buffer.from(body, "base64");
  for (const [name, oid] of UNSUPPORTED_OIDS) {
    if (der.indexOf(Buffer.from(oid)) !== -1) return name;
  }
  return undefined;
}

export function createKeyring(pairs: KeyPair[]): Keyring {
  const byId = new Map<string, KeyPair>();
  for (const pair of pairs) {
    const seen = byId.get(pair.id);
    if (seen && seen !== pair) throw new KeyImportError(`duplicate key pair id "${pair.id}"`);
    byId.set(pair.id, pair);
  }
  const all = Object.freeze([...byId.values()]);
  return Object.freeze({ get: (kid: string) => byId.get(kid), all });
}

/** RFC 7517 §5 JWK Set of the given pairs' public keys, in order, first one wins per kid. */
export function jwks(pairs: readonly KeyPair[]): { keys: Record<string, unknown>[] } {
  const seen = new Set<string>();
  const keys: Record<string, unknown>[] = [];
  for (const pair of pairs) {
    if (seen.has(pair.id)) continue;
    seen.add(pair.id);
    keys.push({ ...pair.publicJwk });
  }
  return { keys };
}
