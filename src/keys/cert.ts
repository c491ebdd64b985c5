// Certificates are read once, when a config is compiled, with node:crypto's X509Certificate
// (every runtime we support provides it). Only the leaf (the first certificate of the chain, RFC 8446
// §4.4.2) says which names the key pair serves; the rest of the chain is kept as given.
import { X509Certificate } from "node:crypto";
import type { KeyObject } from "node:crypto";

/**
 * A key pair or certificate that cannot be used; the message is shown to the user as is.
 * It lives here, the leaf module, so keyring.ts can re-export it without an import cycle.
 */
export class KeyImportError extends Error {
  override name = "KeyImportError";
}

export interface ParsedCertificate {
  /** The full chain PEM as given (leaf first). */
  readonly pem: string;
  /** DNS SANs (lowercased) and IP SANs; the subject CN only when there is no SAN at all. */
  readonly serverNames: string[];
  readonly notAfter: Date;
  readonly notBefore: Date;
  readonly subject: string;
  /** The leaf's public key, to check it belongs to the private key it is served with. */
  readonly publicKey: KeyObject;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export function parseCertificateChain(pem: string): ParsedCertificate {
  const blocks = typeof pem === "string" ? pem.match(CERT_BLOCK) : null;
  if (!blocks) {
    const label = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(String(pem))?.[1];
    throw new KeyImportError(
      label ? `not a PEM certificate (found 'BEGIN ${label}', expected 'BEGIN CERTIFICATE')` : "not a PEM certificate (no '-----BEGIN CERTIFICATE-----' line found)",
    );
  }
  const chain = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      const which = blocks.length > 1 ? `certificate #${i + 1} of the chain` : "the certificate";
      throw new KeyImportError(`cannot read ${which}: ${(err as Error).message}`);
    }
  });
  const leaf = chain[0]!;
  return Object.freeze({
    pem,
    serverNames: serverNamesOf(leaf),
    notBefore: leaf.validFromDate ?? new Date(leaf.validFrom),
    notAfter: leaf.validToDate ?? new Date(leaf.validTo),
    subject: leaf.subject,
    publicKey: leaf.publicKey,
  });
}

function serverNamesOf(cert: X509Certificate): string[] {
  const names: string[] = [];
  let sawSan = false;
  for (const [type, value] of sanEntries(cert.subjectAltName ?? "")) {
    sawSan = true;
    if (type === "DNS") names.push(value.toLowerCase());
    else if (type === "IP Address") names.push(normalizeIp(value));
  }
  // RFC 6125 §6.4.4: the CN is only a fallback for certificates without subjectAltName.
  if (!sawSan) {
    for (const line of cert.subject.split("\n")) {
      if (line.startsWith("CN=")) names.push(line.slice(3).toLowerCase());
    }
  }
  return [...new Set(names)];
}

/**
 * node:crypto renders SANs as `DNS:a, IP Address:1.2.3.4, ...`; values that contain a comma or
 * quote are emitted as JSON strings (the CVE-2021-44532 fix), so split with that in mind.
 */
function* sanEntries(san: string): Generator<[string, string]> {
  const entry = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/y;
  let m: RegExpExecArray | null;
  while (entry.lastIndex < san.length && (m = entry.exec(san))) {
    const raw = m[2]!;
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        continue;
      }
    }
    yield [m[1]!, value];
  }
}

/** Runtimes print IPv6 SANs either uncompressed (0:0:...:1) or compressed (::1); the WHATWG URL parser gives one form. */
function normalizeIp(ip: string): string {
  if (!ip.includes(":")) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip.toLowerCase();
  }
}
