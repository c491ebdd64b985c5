// Checks that need the whole validated config: duplicates and references between sections, and
// settings that would fail at run time. Messages name paths, never values from the file.
import { parseCertificateChain } from "../keys/cert.ts";
import { domainKey, parseDomain } from "../router/domain.ts";
import { type Config, DEFAULT_SIGNING_KEY_PAIR } from "./schema.ts";
import type { Path } from "./parse.ts";

export interface ReferenceProblem {
  path: Path;
  message: string;
  /** Point at the key rather than the value (duplicates). */
  atKey?: boolean;
  severity?: "error" | "warning";
}

function duplicates<T>(items: readonly T[], keyOf: (t: T) => string, report: (i: number, first: number) => void): void {
  const seen = new Map<string, number>();
  items.forEach((it, i) => {
    const k = keyOf(it);
    const first = seen.get(k);
    if (first === undefined) seen.set(k, i);
    else report(i, first);
  });
}

/** "Invalid regular expression: /src/flags: reason" → "reason" (the pattern may be anything). */
function regexReason(e: unknown): string {
  const m = String((e as Error)?.message ?? "");
  const reason = m.slice(m.lastIndexOf(": ") + 2);
  return /^[A-Za-z][A-Za-z ,'()[\]-]*$/.test(reason) && reason.length < 80 ? reason : "invalid syntax";
}

/** A CA bundle that cannot be read would fail every TLS handshake with the target. */
function caProblem(pem: string): boolean {
  try {
    parseCertificateChain(pem);
    return false;
  } catch {
    return true;
  }
}

export function checkReferences(c: Config): ReferenceProblem[] {
  const out: ReferenceProblem[] = [];
  duplicates(c.routes, (r) => r.id, (i, f) => out.push({ path: ["routes", i, "id"], message: `duplicate route id (first at routes[${f}].id)` }));
  duplicates(c.apikeys, (a) => a.clientId, (i, f) => out.push({ path: ["apikeys", i, "clientId"], message: `duplicate clientId (first at apikeys[${f}].clientId)` }));
  duplicates(c.keypairs, (k) => k.id, (i, f) => out.push({ path: ["keypairs", i, "id"], message: `duplicate key pair id (first at keypairs[${f}].id)` }));

  // Two enabled routes on the same domain and path whose methods overlap: which one wins would be arbitrary.
  const claimed = new Map<string, { at: string; methods: Set<string> | null }[]>();
  c.routes.forEach((r, i) => {
    r.frontend.domains.forEach((d, j) => {
      const parsed = parseDomain(d);
      if (!parsed.ok) return; // reported by the schema
      if (!r.enabled) return;
      const key = domainKey(parsed.spec);
      const methods = r.frontend.methods?.length ? new Set(r.frontend.methods) : null;
      const others = claimed.get(key) ?? [];
      const clash = others.find((o) => o.methods === null || methods === null || [...methods].some((m) => o.methods!.has(m)));
      if (clash) out.push({ path: ["routes", i, "frontend", "domains", j], message: `duplicate domain: already served by ${clash.at} (give the routes different paths or disjoint methods)` });
      others.push({ at: `routes[${i}].frontend.domains[${j}]`, methods });
      claimed.set(key, others);
    });
  });

  const routeIds = new Set(c.routes.map((r) => r.id));
  const groups = new Set(c.routes.flatMap((r) => r.groups));
  groups.add("default");
  const ccs = c.plugins.filter((p) => p.plugin === "ClientCredentialService" && p.enabled);
  const keyPairIds = new Set(c.keypairs.map((k) => k.id));
  // The default signing key pair is generated on first start when a ClientCredentialService needs it.
  const signingIds = new Set(keyPairIds);
  if (ccs.length) signingIds.add(DEFAULT_SIGNING_KEY_PAIR);

  c.apikeys.forEach((a, i) => {
    a.authorizedEntities.forEach((e, j) => {
      const at: Path = ["apikeys", i, "authorizedEntities", j];
      if (e.startsWith("route_") && !routeIds.has(e.slice(6))) out.push({ path: at, message: "unknown route (no route has this id)" });
      if (e.startsWith("group_") && !groups.has(e.slice(6))) out.push({ path: at, message: "unknown group (no route declares it in groups)" });
    });
    const kp = a.metadata["jwt-sign-keypair"];
    if (kp !== undefined && !signingIds.has(kp)) {
      out.push({ path: ["apikeys", i, "metadata", "jwt-sign-keypair"], message: `unknown key pair${ccs.length ? " (no key pair has this id)" : " (declare it under keypairs:)"}` });
    }
    if (a.metadata.scope !== undefined && !/^[\x21\x23-\x5b\x5d-\x7e]+( +[\x21\x23-\x5b\x5d-\x7e]+)*$/.test(a.metadata.scope.trim())) {
      out.push({ path: ["apikeys", i, "metadata", "scope"], message: "scope must be space-separated scope tokens (RFC 6749 §3.3)" });
    }
  });

  if (ccs.length > 1) out.push({ path: ["plugins", c.plugins.lastIndexOf(ccs[1]), "plugin"], message: "only one enabled ClientCredentialService may be configured" });
  c.plugins.forEach((p, i) => {
    if (p.plugin !== "ClientCredentialService") return;
    const cfg = p.config;
    if (cfg.domain !== "*") {
      try {
        new RegExp(`^(?:${cfg.domain})$`, "i");
      } catch (e) {
        out.push({ path: ["plugins", i, "config", "domain"], message: `not a valid regular expression (${regexReason(e)})` });
      }
    }
    cfg.previousKeyPairs.forEach((id, j) => {
      if (!keyPairIds.has(id) && id !== DEFAULT_SIGNING_KEY_PAIR) out.push({ path: ["plugins", i, "config", "previousKeyPairs", j], message: "unknown key pair (no key pair has this id)" });
    });
    if (!keyPairIds.has(cfg.defaultKeyPair) && cfg.defaultKeyPair !== DEFAULT_SIGNING_KEY_PAIR) {
      out.push({ path: ["plugins", i, "config", "defaultKeyPair"], message: "unknown key pair (no key pair has this id)" });
    }
    // RFC 6749 §2.3.1 / §3.2: the token endpoint is TLS only; a plain-HTTP request with secure:
    // true is answered 400, so without any way to see https every token call would fail.
    if (p.enabled && cfg.secure && !c.server.https && c.server.trustedProxies.length === 0) {
      out.push({
        path: ["plugins", i, "config", "secure"],
        severity: "warning",
        message:
          "secure: true, but there is no HTTPS listener (server.https) and no trusted proxy (server.trustedProxies) to report https: every token call would get 400; add one of them, or set secure: false for plain HTTP",
      });
    }
    if (p.enabled && cfg.domain === "*" && !cfg.issuer) {
      out.push({
        path: ["plugins", i, "config", "domain"],
        severity: "warning",
        message: 'domain "*" without an issuer: any Host header a client sends ends up in token issuers and metadata; set config.issuer or a domain regex',
      });
    }
  });

  const https = c.server.https;
  https?.keyPairs.forEach((id, j) => {
    const kp = c.keypairs.find((k) => k.id === id);
    if (!kp) out.push({ path: ["server", "https", "keyPairs", j], message: "unknown key pair (no key pair has this id)" });
    else if (!kp.certificate) out.push({ path: ["server", "https", "keyPairs", j], message: "this key pair has no certificate to serve TLS with" });
  });
  // Two listeners on one port: the second would fail to bind at start.
  if (https && https.port !== 0 && https.port === c.server.port) out.push({ path: ["server", "https", "port"], message: "the HTTPS port is the HTTP port (server.port); give them different ports" });

  c.routes.forEach((r, i) => {
    r.backend.targets.forEach((t, j) => {
      const at: Path = ["routes", i, "backend", "targets", j, "tlsConfig"];
      if (!t.tlsConfig) return;
      if (!t.tls) out.push({ path: at, severity: "warning", message: "tlsConfig is ignored: this target is called over plain HTTP (tls: false)" });
      if (t.tlsConfig.ca !== undefined && caProblem(t.tlsConfig.ca)) {
        out.push({ path: [...at, "ca"], message: "expected one or more PEM certificates (-----BEGIN CERTIFICATE----- blocks); every call to this target would fail" });
      }
    });
    // One route able to fill the process-wide budget could starve every other route.
    if (r.enabled && r.backend.client.maxConnections * r.backend.targets.length >= c.server.maxUpstreamRequests) {
      out.push({
        path: ["routes", i, "backend", "client", "maxConnections"],
        severity: "warning",
        message:
          "maxConnections × the number of targets reaches server.maxUpstreamRequests: this route alone could hold every backend call the gateway allows and starve the other routes; lower it or raise server.maxUpstreamRequests",
      });
    }
  });
  return out;
}
