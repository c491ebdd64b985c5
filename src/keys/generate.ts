// Key generation for `otoroshi-lite keygen` and for the default signing key pair created on
// first start (state.ts). Output is PKCS#8 / SPKI PEM, the formats importKeyPair prefers.
import { generateKeyPairSync } from "node:crypto";

export type GenAlg = "RS256" | "ES256" | "ES384" | "ES512" | "EdDSA";

const PEM = {
  privateKeyEncoding: { type: "pkcs8", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
} as const;

export function generateKeyPairPem(alg: GenAlg): { privateKeyPem: string; publicKeyPem: string } {
  const pair = generate(alg);
  return { privateKeyPem: pair.privateKey, publicKeyPem: pair.publicKey };
}

function generate(alg: GenAlg): { privateKey: string; publicKey: string } {
  switch (alg) {
    // RFC 7518 §3.3: 2048 bits is the minimum for RS256; F4 is the usual public exponent.
    case "RS256":
      return generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 0x10001, ...PEM });
    // RFC 7518 §3.4: the curve fixes the alg.
    case "ES256":
      return generateKeyPairSync("ec", { namedCurve: "P-256", ...PEM });
    case "ES384":
      return generateKeyPairSync("ec", { namedCurve: "P-384", ...PEM });
    case "ES512":
      return generateKeyPairSync("ec", { namedCurve: "P-521", ...PEM });
    // RFC 8037 §3.1: EdDSA with Ed25519.
    case "EdDSA":
      return generateKeyPairSync("ed25519", PEM);
    default:
      throw new Error(`cannot generate a key pair for alg ${String(alg)}; use RS256, ES256, ES384, ES512 or EdDSA`);
  }
}

// YAML 1.2 core schema resolves these plain scalars to non-strings; quote ids that look like them.
const PLAIN_ID = /^[A-Za-z][A-Za-z0-9._-]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|y|n)$/i;

/**
 * A ready-to-paste item for the `keypairs:` list. The PEM goes in a literal block scalar (`|`)
 * so its line breaks are kept exactly; the key is generated fresh on every call.
 */
export function keygenYaml(id: string, alg: GenAlg): string {
  if (typeof id !== "string" || id === "") throw new Error("a key pair needs a non-empty id");
  const { privateKeyPem } = generateKeyPairPem(alg);
  const scalar = PLAIN_ID.test(id) && !RESERVED.test(id) ? id : JSON.stringify(id);
  const pem = privateKeyPem
    .trimEnd()
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");
  return [
    `# ${alg} key pair (the alg is derived from the key). Keep this private key secret;`,
    `# to commit the config, move it to a file and use privateKey: \${file:path}.`,
    `- id: ${scalar}`,
    `  privateKey: |`,
    pem,
    "",
  ].join("\n");
}
