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

let websocketsOpen = 0;
let healthSource: () => readonly TargetHealth[] = () => [];

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
};
