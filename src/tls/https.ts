// The HTTPS listener's certificates: the keyPairs certificates (re-read on every applied
// reload, so a certbot-renewed file is served without a restart), the ACME certificates, and a
// default for clients that name nothing we have. Any change is pushed into the running listener
// (Runtime ServerHandle.updateTls); the order of the list makes manual certificates win.
import { resolveStateDir, type Snapshot } from "../config/compile.ts";
import { log } from "../log.ts";
import type { Handler, Runtime, ServerHandle, TlsCert } from "../runtime/types.ts";
import { acmeDomains } from "./acme/domains.ts";
import { AcmeManager } from "./acme/manager.ts";
import { selfSignedCertificate } from "./self-signed.ts";
import { type CertificateState, gauges } from "../monitoring/gauges.ts";

export interface HttpsService {
  readonly port: number;
  readonly handle: ServerHandle;
  /** Names with a certificate of their own right now. */
  names(): string[];
  /** Re-reads key pair certificates and ACME names from a snapshot that was just applied. */
  applied(snapshot: Snapshot): void;
  status(): Record<string, unknown>;
  stop(): void;
}

type ManualCert = TlsCert & { notAfter: Date };

/** Certificates of the listed key pairs that exist in this snapshot (a reload may have dropped one). */
function manualCerts(snapshot: Snapshot, ids: readonly string[]): ManualCert[] {
  return ids.flatMap((id) => {
    const kp = snapshot.keyring.get(id);
    if (!kp?.certificate) return [];
    const { pem, serverNames, notAfter } = kp.certificate;
    return [{ cert: pem, key: kp.privateKey.export({ format: "pem", type: "pkcs8" }) as string, serverNames, notAfter }];
  });
}

const sameCerts = (a: readonly TlsCert[], b: readonly TlsCert[]) =>
  a.length === b.length && a.every((c, i) => c.cert === b[i].cert && c.key === b[i].key && c.serverNames.join() === b[i].serverNames.join());

/** Created before the listeners so that the HTTP listener can answer its challenges. */
export function createAcme(snapshot: Snapshot): AcmeManager | null {
  const acme = snapshot.config.server.https?.acme;
  if (!acme?.enabled) return null;
  return new AcmeManager({ acme, stateDir: resolveStateDir(snapshot.config, snapshot.file) });
}

export async function startHttps(opts: { runtime: Runtime; snapshot: Snapshot; handler: Handler; acme: AcmeManager | null }): Promise<HttpsService> {
  const { runtime, snapshot, acme } = opts;
  const server = snapshot.config.server;
  const https = server.https!;
  let manual = manualCerts(snapshot, https.keyPairs);
  const fallback = manual[0] ?? (await selfSignedCertificate());
  const loggedSkips = new Set<string>();

  const compose = (): TlsCert[] => {
    const issued = (acme?.certificates() ?? []).map((c) => ({ cert: c.chain, key: c.key, serverNames: [c.domain] }));
    return manual.length ? [...manual, ...issued] : [fallback, ...issued];
  };
  const syncDomains = (snap: Snapshot) => {
    if (!acme) return;
    const { domains, skipped } = acmeDomains(snap.config, manual.flatMap((c) => c.serverNames));
    for (const s of skipped) {
      if (loggedSkips.has(s.name)) continue;
      loggedSkips.add(s.name);
      log("info", "acme.skipped", { domain: s.name, reason: s.reason });
    }
    acme.setDomains(domains);
  };

  // Stored ACME certificates are served from the first handshake on.
  syncDomains(snapshot);
  let served = compose();
  const handle = await runtime.serve({
    hostname: server.host,
    port: https.port,
    handler: opts.handler,
    tls: served,
    idleTimeoutSeconds: server.idleTimeout,
    maxRequestBodySize: server.maxRequestBodySize,
  });

  gauges.setCertificateSource(() => [
    ...manual.flatMap((c) => c.serverNames.map((name): CertificateState => ({ name, source: "keyPair", notAfter: c.notAfter.getTime(), failing: false }))),
    ...(acme?.certificateStates() ?? []),
  ]);

  // One update at a time; a change that arrives meanwhile is folded into the next one.
  let pushing: Promise<void> | null = null;
  let again = false;
  const push = () => {
    if (pushing) return void (again = true);
    const next = compose();
    if (sameCerts(next, served)) return;
    pushing = (handle.updateTls?.(next) ?? Promise.reject(new Error(`the ${runtime.name} listener cannot change its certificates`)))
      .then(
        () => {
          served = next;
          log("info", "tls.certificates_updated", { port: handle.port, names: next.flatMap((c) => c.serverNames) });
        },
        (e: Error) => log("error", "tls.update_failed", { port: handle.port, message: e.message }),
      )
      .finally(() => {
        pushing = null;
        if (again) {
          again = false;
          push();
        }
      });
  };
  if (acme) acme.onChange = push;

  return {
    port: handle.port,
    handle,
    names: () => served.flatMap((c) => c.serverNames),
    applied(snap) {
      const next = manualCerts(snap, https.keyPairs);
      if (next.length) manual = next; // never fall back to nothing because a reload dropped the key pairs
      syncDomains(snap);
      push();
    },
    status() {
      const keyPairs = manual.map((c) => ({ names: c.serverNames, source: "keyPair", notAfter: c.notAfter.toISOString() }));
      return { port: handle.port, certificates: [...keyPairs, ...(acme?.status() ?? [])] };
    },
    stop() {
      acme?.stop();
    },
  };
}
