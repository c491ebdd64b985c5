// Backends for failover tests: a real HTTP server on 127.0.0.1 whose health endpoint can be
// flipped, that records every call it receives, and a port that refuses connections.
//
//   GET /health     answers `health` (200 or what the test set); counted apart
//   /slow/:ms       waits ms (or until the client leaves), then answers like any other call;
//                   every other call waits `delayMs` (0 by default)
//   /reset          reads the whole request body, records it, then destroys the connection
//                   without an answer (a call that failed after it was sent)
//   anything else   reads the body, records it, answers 200 {name, method, path, body}
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, createServer, type Socket } from "node:net";

export interface Recorded {
  method: string;
  path: string;
  body: string;
  headers: IncomingMessage["headers"];
}

export interface FlipBackend {
  name: string;
  port: number;
  /** Calls other than /health, in arrival order. */
  calls: Recorded[];
  healthChecks: number;
  /** Status /health answers (200 by default). */
  health: number;
  /** Calls being answered now (LeastConnections tests). */
  inFlight: number;
  /** Every call (but /health) waits this long before its answer. */
  delayMs: number;
  stop(): Promise<void>;
}

export async function startFlipBackend(name: string, port = 0): Promise<FlipBackend> {
  const sockets = new Set<Socket>();
  const b: FlipBackend = { name, port: 0, calls: [], healthChecks: 0, health: 200, inFlight: 0, delayMs: 0, stop: async () => {} };
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? "/";
    if (path === "/health") {
      b.healthChecks++;
      req.resume();
      res.writeHead(b.health, { "content-type": "text/plain" }).end(b.health === 200 ? "ok" : "down");
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const rec = { method: req.method ?? "", path, body: Buffer.concat(chunks).toString("utf8"), headers: req.headers };
      b.calls.push(rec);
      if (path === "/reset") return void req.socket.destroy();
      const answer = () => {
        b.inFlight--;
        if (!res.destroyed) res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ name, method: rec.method, path, body: rec.body }));
      };
      b.inFlight++;
      const slow = /^\/slow\/(\d+)/.exec(path);
      const wait = slow ? Number(slow[1]) : b.delayMs;
      if (wait > 0) {
        const t = setTimeout(answer, Math.min(wait, 10_000));
        res.on("close", () => {
          if (!res.writableEnded) {
            clearTimeout(t);
            b.inFlight--;
          }
        });
      } else answer();
    });
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  b.port = (server.address() as AddressInfo).port;
  b.stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return b;
}

/** A port nothing listens on: bound once by us, then closed (connections to it are refused). */
export async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Polls `cond` every 25 ms, at most `ms` ms; throws with `what` when it never held. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
