// A real WebSocket backend (Bun.serve's own server) for the WebSocket tests: echo, commands the
// test sends as text messages, a refused upgrade, and a record of what it saw.
import type { Server, ServerWebSocket } from "bun";

export interface Seen {
  url: string;
  headers: Record<string, string>;
}

export interface WsBackend {
  port: number;
  server: Server<Seen>;
  /** Upgrade requests, in order. */
  upgrades: Seen[];
  /** Close frames the backend received: code and reason. */
  closes: { code: number; reason: string }[];
  /** Pings and pongs the backend received (payload as text). */
  pings: string[];
  pongs: string[];
  /** Bytes the backend could not hand to the kernel yet, over its open sockets. */
  buffered(): number;
  open(): number;
  stop(): void;
}

/**
 * Paths: /refuse answers 403 with a body and x-refused; anything else upgrades, choosing the
 * subprotocol "chat" when offered. Text commands: "close:<code>:<reason>" closes,
 * "ping:<text>" pings the client, "seen" answers the upgrade request as JSON, "big:<n>" sends n
 * bytes of binary; anything else is echoed as it came (text or binary).
 */
export function startWsBackend(opts: { hostname?: string; tls?: { cert: string; key: string } } = {}): WsBackend {
  const upgrades: Seen[] = [];
  const closes: { code: number; reason: string }[] = [];
  const pings: string[] = [];
  const pongs: string[] = [];
  const sockets = new Set<ServerWebSocket<Seen>>();
  const server = Bun.serve<Seen>({
    hostname: opts.hostname ?? "127.0.0.1",
    port: 0,
    ...(opts.tls ? { tls: opts.tls } : {}),
    fetch(req, srv) {
      const url = new URL(req.url);
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      const seen = { url: url.pathname + url.search, headers };
      upgrades.push(seen);
      if (url.pathname.endsWith("/refuse")) return new Response("no websocket here", { status: 403, headers: { "x-refused": "yes", "content-type": "text/plain" } });
      const offered = (req.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) => s.trim());
      const extra: Record<string, string> = offered.includes("chat") ? { "sec-websocket-protocol": "chat" } : {};
      if (srv.upgrade(req, { data: seen, headers: extra })) return undefined as unknown as Response;
      return new Response("not a websocket request", { status: 400 });
    },
    websocket: {
      maxPayloadLength: 64 * 1024 * 1024,
      backpressureLimit: 128 * 1024 * 1024,
      idleTimeout: 0,
      open(ws) {
        sockets.add(ws);
      },
      message(ws, m) {
        if (typeof m === "string") {
          if (m.startsWith("close:")) {
            const [, code, ...reason] = m.split(":");
            return void ws.close(Number(code), reason.join(":"));
          }
          if (m.startsWith("ping:")) return void ws.ping(m.slice(5));
          if (m === "seen") return void ws.send(JSON.stringify(ws.data));
          // Stops reading this socket: what the gateway sends it piles up (backpressure tests).
          if (m === "pause") return void ws.pause();
          if (m.startsWith("big:")) return void ws.send(new Uint8Array(Number(m.slice(4))).fill(7));
          if (m.startsWith("flood:")) {
            // "flood:<count>:<bytes>": as fast as the backend may, whoever reads them.
            const [, count, size] = m.split(":");
            const chunk = new Uint8Array(Number(size)).fill(1);
            for (let i = 0; i < Number(count); i++) ws.send(chunk);
            return;
          }
        }
        ws.send(m);
      },
      ping(_ws, data) {
        pings.push(new TextDecoder().decode(data));
      },
      pong(_ws, data) {
        pongs.push(new TextDecoder().decode(data));
      },
      close(ws, code, reason) {
        sockets.delete(ws);
        closes.push({ code, reason });
      },
    },
  });
  return {
    port: server.port!,
    server,
    upgrades,
    closes,
    pings,
    pongs,
    buffered: () => [...sockets].reduce((n, s) => n + s.getBufferedAmount(), 0),
    open: () => sockets.size,
    stop: () => void server.stop(true),
  };
}

/** Opens a WebSocket and resolves once it is open (rejects on error or after 5 s). */
export function openWs(url: string, init?: { protocols?: string | string[]; headers?: Record<string, string> }): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { protocols: init?.protocols, headers: init?.headers } as unknown as string[]);
    ws.binaryType = "arraybuffer";
    const timer = setTimeout(() => reject(new Error("WebSocket did not open within 5 s")), 5000);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onerror = (e) => {
      clearTimeout(timer);
      reject(new Error(`WebSocket error: ${(e as ErrorEvent).message ?? "failed"}`));
    };
  });
}

/** The next message (rejects after `ms`). */
export function nextMessage(ws: WebSocket, ms = 5000): Promise<string | ArrayBuffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no message within the time limit")), ms);
    ws.addEventListener("message", (e) => {
      clearTimeout(timer);
      resolve((e as MessageEvent).data);
    }, { once: true });
  });
}

/** The close event (rejects after `ms`). */
export function closed(ws: WebSocket, ms = 5000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    if (ws.readyState === WebSocket.CLOSED) return reject(new Error("already closed"));
    const timer = setTimeout(() => reject(new Error("not closed within the time limit")), ms);
    ws.addEventListener("close", (e) => {
      clearTimeout(timer);
      resolve({ code: (e as CloseEvent).code, reason: (e as CloseEvent).reason });
    }, { once: true });
  });
}
