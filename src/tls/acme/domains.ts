// Which names get an ACME certificate: server.https.acme.domains when given, else every exact
// host of the enabled routes. A name that a keyPairs certificate already serves is left to it
// (manual certificates win), and names HTTP-01 cannot prove are skipped with their reason.
import { acmeDomainProblem } from "../../config/acme-schema.ts";
import type { Config } from "../../config/schema.ts";
import { parseDomain } from "../../router/domain.ts";

export interface Skipped {
  name: string;
  reason: string;
}

/** Does a certificate for `names` (exact or "*.parent", one label) serve `host`? */
export function coveredBy(host: string, names: readonly string[]): boolean {
  const dot = host.indexOf(".");
  return names.some((n) => n === host || (dot > 0 && n === "*" + host.slice(dot)));
}

export function acmeDomains(config: Config, manualNames: readonly string[]): { domains: string[]; skipped: Skipped[] } {
  const acme = config.server.https?.acme;
  const wanted = new Map<string, string | null>();
  if (acme?.domains) {
    for (const d of acme.domains) wanted.set(d.toLowerCase().replace(/\.$/, ""), null);
  } else {
    for (const r of config.routes) {
      if (!r.enabled) continue;
      for (const d of r.frontend.domains) {
        const p = parseDomain(d);
        // The catch-all "*" names no host to ask a certificate for.
        if (!p.ok || p.spec.host === "") continue;
        if (p.spec.wildcard) wanted.set(`*.${p.spec.host}`, "wildcard names need the DNS-01 challenge; serve them with a keyPairs certificate");
        else if (!wanted.has(p.spec.host)) wanted.set(p.spec.host, acmeDomainProblem(p.spec.host));
      }
    }
  }
  const domains: string[] = [];
  const skipped: Skipped[] = [];
  for (const [name, problem] of wanted) {
    if (coveredBy(name, manualNames)) skipped.push({ name, reason: "served by a keyPairs certificate" });
    else if (problem) skipped.push({ name, reason: problem });
    else domains.push(name);
  }
  return { domains: domains.sort(), skipped };
}
