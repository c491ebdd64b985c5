// A small echo backend for the benches: Bun.serve on 127.0.0.1, no framework.
//   bun bench/backend.ts [port]        (default 9001; 0 picks a free port)
// GET /64k → 64 KiB of bytes; anything else → a small JSON body naming method, path and the
// size of the request body it read.
// Prints "listening <port>" on stdout once it accepts connections.
const port = Number(process.argv[2] ?? process.env.PORT ?? 9001);

const SMALL_HEADERS = { "content-type": "application/json" };
const BIG_HEADERS = { "content-type": "application/octet-stream" };
// Built once: every /64k answer sends the same bytes, so the backend does no per-request work
// beyond Bun's own, and the bench measures the proxies rather than the backend.
const BIG = new Uint8Array(64 * 1024).fill(120 /* "x" */);

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  development: false,
  async fetch(req) {
    const url = req.url;
    const p = url.indexOf("/", url.indexOf("://") + 3);
    const q = url.indexOf("?", p);
    const path = q < 0 ? url.slice(p) : url.slice(p, q);
    if (path === "/64k" || path.endsWith("/64k")) return new Response(BIG, { headers: BIG_HEADERS });
    // A body is read (and its size echoed), as a real backend would, so POST benches pay for it.
    const received = req.body === null ? 0 : (await req.arrayBuffer()).byteLength;
    return new Response(JSON.stringify({ ok: true, method: req.method, path, received }), { headers: SMALL_HEADERS });
  },
});

console.log(`listening ${server.port}`);
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => {
    server.stop(true);
    process.exit(0);
  });
}

// A module (not a global script), so its top-level names and await stay its own under tsc.
export {};
