// A Bun proxy to one target that adds, one flag at a time, the per-request work the gateway's
// open route does, so bench/ablation.sh can price each piece over HTTP in one run.
//   bun bench/ablation.ts LISTEN_PORT TARGET_PORT FLAGS     (FLAGS: comma list or "none")
// Flags (each mirrors a line of src/):
//   ip       srv.requestIP(req) + the ::ffff: regex            (runtime/bun.ts)
//   signal   req.signal.addEventListener("abort", …)           (proxy/forward.ts)
//   abort    new AbortController(), its signal passed to fetch (proxy/forward.ts)
//   timer    setTimeout + clearTimeout around the fetch        (proxy/forward.ts)
//   reqhdr   backendRequestHeaders()                            (proxy/headers.ts)
//   reshdr   clientResponseHeaders()                            (proxy/headers.ts)
//   opts     the runtime's fetch options: init spread + redirect/decompress/proxy/tls (runtime/bun.ts)
//   o-spread, o-decompress, o-proxy, o-tls   each of those options alone
//   hono     the request goes through a Hono app.all("*") first (gateway.ts)
//   direct   return the upstream Response itself instead of new Response(body, …)
import { Hono } from "hono";
import { backendRequestHeaders, clientResponseHeaders } from "../src/proxy/headers.ts";

const listen = Number(process.argv[2]);
const origin = `http://127.0.0.1:${Number(process.argv[3])}`;
const flags = new Set((process.argv[4] ?? "none").split(",").filter((f) => f && f !== "none"));
const KNOWN = ["ip", "signal", "abort", "timer", "reqhdr", "reshdr", "opts", "o-spread", "o-decompress", "o-proxy", "o-tls", "hono", "direct"];
for (const f of flags) if (!KNOWN.includes(f)) throw new Error(`unknown flag ${f}`);
const on = (f: string) => flags.has(f);

const TLS_OPTIONS = {};
const plainFetch = (url: string, init: RequestInit) => fetch(url, init);
const runtimeFetch = (url: string, init: RequestInit) => fetch(url, { ...init, redirect: "manual", decompress: false, proxy: false, tls: TLS_OPTIONS } as RequestInit);
const oneOption = (extra: Record<string, unknown> | null) => (url: string, init: RequestInit) => fetch(url, extra ? ({ ...init, ...extra } as RequestInit) : { ...init });
const upstreamFetch = on("opts")
  ? runtimeFetch
  : on("o-spread")
  ? oneOption(null)
  : on("o-decompress")
  ? oneOption({ decompress: false })
  : on("o-proxy")
  ? oneOption({ proxy: false })
  : on("o-tls")
  ? oneOption({ tls: TLS_OPTIONS })
  : plainFetch;

async function proxy(req: Request, ip: string): Promise<Response> {
  const url = req.url;
  const path = url.slice(url.indexOf("/", url.indexOf("://") + 3));
  const headers = on("reqhdr") ? backendRequestHeaders(req.headers, { clientIp: ip, trusted: false, secure: false, host: req.headers.get("host") ?? "" }, null, null) : req.headers;
  if (on("reqhdr")) headers.set("host", origin.slice(7));
  const init: RequestInit = { method: req.method, headers, redirect: "manual" };
  let controller: AbortController | undefined;
  if (on("abort")) {
    controller = new AbortController();
    init.signal = controller.signal;
  }
  if (on("signal")) {
    const c = controller;
    req.signal.addEventListener("abort", () => c?.abort(req.signal.reason), { once: true });
  }
  const timer = on("timer") ? setTimeout(() => controller?.abort(), 30_000) : undefined;
  let res: Response;
  try {
    res = await upstreamFetch(origin + path, init);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
  if (on("direct")) return res;
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers: on("reshdr") ? clientResponseHeaders(res.headers) : res.headers });
}

type Env = { Bindings: { ip: string } };
const app = new Hono<Env>();
app.all("*", (c) => proxy(c.req.raw, c.env.ip));

const MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: listen,
  development: false,
  fetch(req, srv) {
    let ip = "127.0.0.1";
    if (on("ip")) {
      const a = srv.requestIP(req);
      const m = a ? MAPPED.exec(a.address) : null;
      ip = m ? m[1]! : (a?.address ?? "");
    }
    return on("hono") ? (app.fetch(req, { ip }) as Promise<Response>) : proxy(req, ip);
  },
});
console.log(`listening ${server.port} flags=${[...flags].join(",") || "none"}`);
for (const sig of ["SIGTERM", "SIGINT"] as const) {
  process.on(sig, () => {
    server.stop(true);
    process.exit(0);
  });
}
