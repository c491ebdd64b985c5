// The certificate a TLS listener falls back to when no key pair gives it one: clients that send
// no SNI, or a name with no certificate yet (an ACME order still running). It is generated in
// memory at each start and never trusted by anyone: its only job is to let the handshake fail
// with a certificate error, visibly, rather than with a dropped connection.
import { webcrypto } from "node:crypto";
import type { TlsCert } from "../runtime/types.ts";

export const DEFAULT_CERT_NAME = "otoroshi-lite.invalid";

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`;
}

export async function selfSignedCertificate(now = Date.now()): Promise<TlsCert> {
  const x509 = await import("@peculiar/x509");
  x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString("hex").replace(/^[89a-f]/, "1"),
    name: `CN=${DEFAULT_CERT_NAME}`,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 365 * 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "dns", value: DEFAULT_CERT_NAME }]), new x509.BasicConstraintsExtension(false, undefined, true)],
  });
  const key = pem("PRIVATE KEY", await webcrypto.subtle.exportKey("pkcs8", keys.privateKey as never));
  return { cert: cert.toString("pem") + "\n", key, serverNames: [] };
}
