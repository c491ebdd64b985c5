// Process-wide figures that the proxy keeps and the monitoring endpoints read (metrics, health,
// status). A producer registers or updates them; a reader only reads. Nothing here comes from a
// request: route ids and target names are the config's own.

export interface TargetHealth {
  /** The route id, as in the config. */
  route: string;
  /** "host:port" of the target, as in the config. */
  target: string;
  healthy: boolean;
}

/** A certificate the HTTPS listener serves. */
export interface CertificateState {
  /** A DNS name it serves, as in the config (a route's domain, acme.domains, a key pair's SAN). */
  name: string;
  source: "keyPair" | "acme";
  /** Expiry, epoch ms; null while an ACME name has no certificate yet. */
  notAfter: number | null;
  /** The last ACME order or renewal for this name failed. */
  failing: boolean;
}

let websocketsOpen = 0;
let healthSource: () => readonly TargetHealth[] = () => [];
let certificateSource: () => readonly CertificateState[] = () => [];

export const gauges = {
  websocketOpened(): void {
    websocketsOpen++;
  },
  websocketClosed(): void {
    if (websocketsOpen > 0) websocketsOpen--;
  },
  get websocketsOpen(): number {
    return websocketsOpen;
  },
  /** The health checker registers where the current targets' health is read from. */
  setTargetHealthSource(source: () => readonly TargetHealth[]): void {
    healthSource = source;
  },
  targetHealth(): readonly TargetHealth[] {
    return healthSource();
  },
  /** The HTTPS listener registers where its certificates' state is read from. */
  setCertificateSource(source: () => readonly CertificateState[]): void {
    certificateSource = source;
  },
  certificates(): readonly CertificateState[] {
    return certificateSource();
  },
};
