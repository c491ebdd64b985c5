// Deno's side of a proxied WebSocket: Deno.upgradeWebSocket on a request served by
// Deno.serveHttp (deno-http.ts), reported to the core through SocketEvents.

import type { ClientSocket, SocketEvents } from "./types.ts";

/** How often whenBelow() looks at bufferedAmount: Deno has no drain event. */
const POLL_MS = 5;

function clientSocket(ws: WebSocket): ClientSocket {
  return {
    send: (data) => ws.send(data),
    // Deno's WebSocket API sends no pings of its own choosing (it answers the client's).
    ping: () => {},
    // A server-side Deno WebSocket accepts any code (1001, 1008, 1011), unlike a client one.
    close: (code, reason) => (code === undefined ? ws.close() : ws.close(code, reason)),
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    whenBelow(bytes, then) {
      const check = () => {
        if (ws.readyState === WebSocket.CLOSED) return;
        if (ws.bufferedAmount <= bytes) then();
        else setTimeout(check, POLL_MS);
      };
      check();
    },
    // Deno reads a WebSocket as fast as it can and has no way to stop: the core bounds what
    // it queues towards the backend instead (1008 past it).
    pause: () => false,
    resume: () => {},
  };
}

/** ConnInfo.upgrade for one request; `taken` tells the connection it is no longer HTTP's. */
export function upgradeVia(req: Request, taken: () => void): (headers: Headers, events: SocketEvents) => Response {
  return (headers, events) => {
    const protocol = headers.get("sec-websocket-protocol") ?? undefined;
    // idleTimeout 0: Deno's own ping/close timer stays off; backend.client.idleTimeout is the core's.
    const { socket, response } = Deno.upgradeWebSocket(req, { ...(protocol ? { protocol } : {}), idleTimeout: 0 });
    taken();
    headers.forEach((value, name) => {
      if (name !== "sec-websocket-protocol") response.headers.append(name, value);
    });
    socket.binaryType = "arraybuffer";
    socket.onopen = () => events.open(clientSocket(socket));
    socket.onmessage = (e: MessageEvent) => events.message(typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer));
    // Deno answers pings itself and shows neither pings nor pongs: control() is never called.
    socket.onerror = () => {};
    socket.onclose = (e: CloseEvent) => events.close(e.code, e.reason);
    return response;
  };
}
