// WebSocket load for bench/websocket.sh (Bun). Modes:
//   serve <port>                       an echo backend (Bun.serve), until killed
//   echo <url> <connections> <seconds> ping-pong: each connection sends 64 bytes and waits for
//                                      the echo, in a loop; prints "<msgs/s> <p50 ms> <p99 ms>"
//   idle <url> <count>                 opens <count> sockets, prints "open <count>", then waits
//                                      for a line on stdin and closes them
export {};

const [mode, a = "", b = "", c = ""] = process.argv.slice(2);

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    const t = setTimeout(() => reject(new Error("open timed out")), 10_000);
    ws.onopen = () => (clearTimeout(t), resolve(ws));
    ws.onerror = () => (clearTimeout(t), reject(new Error("open failed")));
  });
}

if (mode === "serve") {
  Bun.serve({
    hostname: "127.0.0.1",
    port: Number(a),
    fetch(req, srv) {
      return srv.upgrade(req) ? undefined : new Response("ws only", { status: 400 });
    },
    websocket: { idleTimeout: 0, message: (ws, m) => void ws.send(m) },
  });
  console.log("listening");
} else if (mode === "echo") {
  const n = Number(b);
  const seconds = Number(c);
  const sockets: WebSocket[] = [];
  for (let i = 0; i < n; i++) sockets.push(await open(a));
  const payload = new Uint8Array(64).fill(42);
  const lat: number[] = [];
  let count = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(sockets.map((ws) =>
    new Promise<void>((done) => {
      let sent = 0;
      ws.onmessage = () => {
        const now = performance.now();
        count++;
        if (lat.length < 2_000_000) lat.push(now - sent);
        if (now >= end) return done();
        sent = now;
        ws.send(payload);
      };
      sent = performance.now();
      ws.send(payload);
    })
  ));
  lat.sort((x, y) => x - y);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0;
  console.log(`${(count / seconds).toFixed(0)} ${q(0.5).toFixed(3)} ${q(0.99).toFixed(3)}`);
  for (const ws of sockets) ws.close();
  process.exit(0);
} else if (mode === "idle") {
  const n = Number(b);
  const sockets: WebSocket[] = [];
  for (let i = 0; i < n; i += 50) sockets.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => open(a)))));
  console.log(`open ${sockets.length}`);
  for await (const _ of console) break;
  for (const ws of sockets) ws.close();
  process.exit(0);
} else {
  console.error("usage: websocket.ts serve <port> | echo <url> <conns> <s> | idle <url> <count>");
  process.exit(2);
}
