// server.https.acme: certificates obtained and renewed with ACME (RFC 8555) over HTTP-01.
import { z } from "zod";
import { KeyImportError, parseCertificateChain } from "../keys/cert.ts";

const LDH_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export const Acme = z.strictObject({
  enabled: z.boolean().default(true).describe("false: keep the settings but order nothing"),
  email: z.email("not a valid email address").optional().describe("Contact address given to the ACME server (expiry notices, if it sends any)"),
  directory: z
    .url({ protocol: /^https?$/, error: "not an http(s) URL" })
    .refine(acmeDirectoryAllowed, "the ACME directory must be an https URL (http only on a loopback address)")
    .default("https://acme-v02.api.letsencrypt.org/directory")
    .describe("ACME directory URL. Let's Encrypt staging: https://acme-staging-v02.api.letsencrypt.org/directory"),
  directoryCa: z
    .string()
    .min(1)
    .superRefine((pem, ctx) => {
      try {
        parseCertificateChain(pem);
      } catch (e) {
        ctx.addIssue({ code: "custom", message: e instanceof KeyImportError ? e.message : "not a PEM certificate" });
      }
    })
    .optional()
    .describe("PEM CA certificate(s) trusted, instead of the system's, for the ACME server (a private CA); ${file:ca.pem}"),
  domains: z
    .array(
      z.string().superRefine((d, ctx) => {
        const m = acmeDomainProblem(d);
        if (m) ctx.addIssue({ code: "custom", message: m });
      }),
    )
    .optional()
    .describe("Names to obtain certificates for (one certificate each). Default: every exact host of the routes' domains"),
  renewBefore: z
    .number({ error: (iss) => (iss.input === undefined ? undefined : "expected a number of days, without a unit (e.g. 30; fractions allowed)") })
    .positive("must be a positive number of days")
    .max(3650, "must be at most 3650 days")
    .optional().describe("Renew this many days (fractions allowed) before expiry. Default: a third of the certificate's lifetime"),
});

/** https everywhere; plain http only to a server on this machine (a test CA such as Pebble behind a TLS terminator). */
function acmeDirectoryAllowed(url: string): boolean {
  if (!URL.canParse(url)) return true; // the url check above reports it
  const u = new URL(url);
  return u.protocol !== "http:" || /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/.test(u.hostname);
}

/** HTTP-01 proves control of one exact DNS name (RFC 8555 §8.3); wildcards need DNS-01. */
export function acmeDomainProblem(d: string): string | null {
  if (d.startsWith("*.")) return "wildcard names need the DNS-01 challenge, which otoroshi-lite does not do; list exact names";
  const host = d.toLowerCase().replace(/\.$/, "");
  const labels = host.split(".");
  if (host.length > 253 || labels.length < 2 || !labels.every((l) => LDH_LABEL.test(l))) return "not a DNS name with two labels or more (letters, digits and '-')";
  if (labels.every((l) => /^\d+$/.test(l))) return "an IP address cannot be validated over HTTP-01 here; list DNS names";
  return null;
}
