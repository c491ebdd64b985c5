// The only contract the core sees of the runtime. Only src/runtime/* and src/bin/* may
// mention Bun or Deno; everything else is written against Web standards and node:* modules
// that both runtimes provide.

/** What the listener knows about the connection a request came on. */
export interface ConnInfo {
  /** Peer IP address as text (IPv4 dotted, or IPv6; IPv4-mapped IPv6 is normalised to IPv4). */
  remoteAddress: string;
  /** True when the request arrived over TLS on this listener. */
  secure: boolean;
  /**
   * The authority of an absolute-form request target (`GET http://api.test/x`), which wins
   * over Host (RFC 9112 §3.2.2). Absent for origin-form, or when the runtime hides it.
   */
  authority?: string;
  /**
   * Present when the request asks for a WebSocket (RFC 6455 §4.2.1) and the listener can take
   * it over. Called at most once, before the handler answers: the handler then returns what it
   * returns. `headers` go on the 101 (Sec-WebSocket-Protocol among them).
   */
  upgrade?: (headers: Headers, events: SocketEvents) => Response;
}

/** The client's side of an upgraded WebSocket, as the adapter exposes it. */
export interface ClientSocket {
  send(data: string | Uint8Array): void;
  /** A ping to the client (no-op where the runtime cannot send one: Deno). */
  ping(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** Bytes queued for the client, not yet written to its connection. */
  readonly bufferedAmount: number;
  /** Calls `then` once the queue is at or below `bytes` (Bun: its drain event; Deno: polled). */
  whenBelow(bytes: number, then: () => void): void;
  /** Stops reading the client (TCP backpressure) and starts again; false where the runtime cannot. */
  pause(): boolean;
  resume(): void;
}

/** What the adapter tells the core about an upgraded client socket. */
export interface SocketEvents {
  open(socket: ClientSocket): void;
  message(data: string | Uint8Array): void;
  /** A ping or pong from the client (the listener answers pings itself). */
  control(kind: "ping" | "pong", data: Uint8Array): void;
  /** Once; 1005 when the close frame had no code, 1006 when the connection just broke. */
  close(code: number, reason: string): void;
}

export type Handler = (req: Request, info: ConnInfo) => Response | Promise<Response>;

export interface TlsCert {
  /** PEM certificate chain (leaf first). */
  cert: string;
  /** PEM private key (PKCS#8). */
  key: string;
  /** DNS names this certificate serves (SNI); "*.example.com" wildcards allowed. */
  serverNames: string[];
}

export interface ServeOptions {
  hostname: string;
  /** 0 picks a free port; the handle reports the real one. */
  port: number;
  handler: Handler;
  /** When present the listener speaks TLS, choosing the certificate by SNI (first is default). */
  tls?: TlsCert[];
  /** Seconds a keep-alive connection may stay idle. */
  idleTimeoutSeconds?: number;
  /** Largest request body the listener accepts before the handler sees it (bytes). */
  maxRequestBodySize?: number;
}

export interface ServerHandle {
  readonly port: number;
  /** Stop accepting; in-flight requests finish unless force. */
  stop(force?: boolean): Promise<void>;
  /**
   * TLS listeners: serve these certificates (same rules as ServeOptions.tls) from the next
   * handshake on, without refusing a connection or cutting a request in flight. Resolves once
   * new handshakes get them.
   */
  updateTls?(certs: TlsCert[]): Promise<void>;
}

/** TLS settings for calls to a backend target. */
export interface UpstreamTls {
  /** Extra trusted CA certificates (PEM); when set, only these are trusted for the target. */
  ca?: string;
  /** Accept any certificate (explicit opt-in). */
  insecure?: boolean;
}

/**
 * A fetch for calling backends. It must: not follow redirects, not decompress bodies
 * (the caller passes the client's own Accept-Encoding), stream request and response bodies,
 * honour a Host header set by the caller, and honour `signal`.
 */
export type UpstreamFetch = (url: string, init: UpstreamInit) => Promise<Response>;

/**
 * RequestInit plus what the gateway asks of the connection: `connectTimeoutMs` bounds opening a
 * new connection (then reject with an error whose code is "ConnectTimeout": nothing was sent).
 * A client without a connect phase of its own to time (Bun's fetch) ignores it.
 */
export interface UpstreamInit extends RequestInit {
  connectTimeoutMs?: number;
}

/** SIGUSR1: reopen the access log file (logrotate). */
export type Signal = "SIGHUP" | "SIGINT" | "SIGTERM" | "SIGUSR1";

export interface Runtime {
  readonly name: "bun" | "deno";
  readonly version: string;
  /** Command-line arguments after the program/script name. */
  readonly args: string[];
  serve(options: ServeOptions): Promise<ServerHandle>;
  /** One client per distinct TLS setting; callers cache the result per snapshot. */
  upstreamFetch(tls?: UpstreamTls): UpstreamFetch;
  onSignal(signal: Signal, listener: () => void): void;
  /**
   * Starts a Web Worker running one of the program's own modules, named by its path under src/
   * (e.g. "config/reload-worker.ts"), with the program's permissions. A compiled binary finds
   * it among its embedded entry points (package.json `build` must list it). A module that
   * cannot be loaded is reported by an "error" event on the worker, or by a throw.
   */
  createWorker(entry: string): Worker;
  exit(code: number): never;
}
