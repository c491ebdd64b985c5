// Reference point for bench/proxy.sh: the least a Bun proxy can do — Bun.serve + fetch to one
// target, headers passed as they are, body streamed back — with no gateway logic. The gap
// between this row and the gateway's open route is the gateway's own cost; the gap between this
// row and nginx is Bun's.
//   bun bench/raw-proxy.ts LISTEN_PORT TARGET_PORT
// REUSE_PORT=1: listen with SO_REUSEPORT, so several copies can share LISTEN_PORT (the kernel
// spreads connections over them: one process per core, as nginx's workers do).
const listen = Number(process.argv[2]);
const target = `http://127.0.0.1:${Number(process.argv[3])}`;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: listen,
  development: false,
  reusePort: process.env.REUSE_PORT === "1",
  async fetch(req) {
    const url = req.url;
    const path = url.slice(url.indexOf("/", url.indexOf("://") + 3));
    const res = await fetch(target + path, { method: req.method, headers: req.headers, redirect: "manual", decompress: false });
    return new Response(res.body, { status: res.status, headers: res.headers });
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
