// Bun's side of a proxied WebSocket: Bun.serve upgrades a request from its fetch handler
// (server.upgrade) and reports the socket's life to one `websocket` handler object.

import type { Server, ServerWebSocket, WebSocketHandler } from "bun";
import { MAX_MESSAGE, QUEUE_BOUND } from "../proxy/websocket.ts";
import type { ClientSocket, SocketEvents } from "./types.ts";

interface WsData {
  events: SocketEvents;
  /** whenBelow() callbacks waiting for Bun's drain event. */
  waiting: { bytes: number; then: () => void }[];
}

/** What the handler returns once Bun has taken the request over (fetch then answers nothing). */
export const UPGRADED = new Response(null, { status: 101 });

export function upgradeVia(server: Server<WsData>, req: Request): (headers: Headers, events: SocketEvents) => Response {
  return (headers, events) => {
    if (!server.upgrade(req, { headers, data: { events, waiting: [] } })) throw new Error("not a WebSocket handshake Bun accepts");
    return UPGRADED;
  };
}

function clientSocket(ws: ServerWebSocket<WsData>): ClientSocket {
  return {
    send: (data) => void ws.send(data),
    ping: (data) => void ws.ping(data),
    close: (code, reason) => (code === undefined ? ws.close() : ws.close(code, reason)),
    get bufferedAmount() {
      return ws.getBufferedAmount();
    },
    whenBelow(bytes, then) {
      if (ws.getBufferedAmount() <= bytes) then();
      else ws.data.waiting.push({ bytes, then });
    },
    pause() {
      ws.pause();
      return true;
    },
    resume: () => ws.resume(),
  };
}

const bytes = (d: Uint8Array | ArrayBuffer | string) => (typeof d === "string" ? new TextEncoder().encode(d) : d instanceof Uint8Array ? d : new Uint8Array(d));

export const bunWebSocket: WebSocketHandler<WsData> = {
  // Messages of MAX_MESSAGE bytes (Bun's default: 16 MiB) get through; larger ones: 1009.
  maxPayloadLength: MAX_MESSAGE,
  // Past this Bun would drop a message (send() returns 0); the core pauses the backend at
  // QUEUE_BOUND, so only one message beyond it can be queued: close rather than drop.
  backpressureLimit: MAX_MESSAGE + 2 * QUEUE_BOUND,
  closeOnBackpressureLimit: true,
  // backend.client.idleTimeout is the core's: Bun's own timer and pings stay off.
  idleTimeout: 0,
  sendPings: false,
  perMessageDeflate: false,
  open(ws) {
    ws.binaryType = "uint8array";
    ws.data.events.open(clientSocket(ws));
  },
  message(ws, message) {
    ws.data.events.message(typeof message === "string" ? message : bytes(message as Uint8Array));
  },
  ping(ws, data) {
    ws.data.events.control("ping", bytes(data));
  },
  pong(ws, data) {
    ws.data.events.control("pong", bytes(data));
  },
  drain(ws) {
    const amount = ws.getBufferedAmount();
    const ready = ws.data.waiting.filter((w) => amount <= w.bytes);
    if (ready.length === 0) return;
    ws.data.waiting = ws.data.waiting.filter((w) => amount > w.bytes);
    for (const w of ready) w.then();
  },
  close(ws, code, reason) {
    ws.data.waiting = [];
    ws.data.events.close(code, reason);
  },
};
