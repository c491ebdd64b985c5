// What observability costs a request, measured in process (not a test: numbers vary by machine).
//   ./node_modules/.bin/bun tests/unit/monitoring/cost.ts      (or deno run -A … with the same path)
// Reported in docs/operations.md ("What observability costs").
import { randomUUID } from "node:crypto";
import { setAccessLogSink } from "../../../src/monitoring/access-log.ts";
import { metrics } from "../../../src/monitoring/metrics.ts";
import { observed } from "../../../src/monitoring/observe.ts";
import { generateRequestId } from "../../../src/monitoring/request-id.ts";
import { traceHeaders } from "../../../src/monitoring/trace.ts";

function ns(label: string, n: number, fn: (i: number) => void): number {
  for (let i = 0; i < Math.min(n, 50_000); i++) fn(i); // warm-up
  const t = performance.now();
  for (let i = 0; i < n; i++) fn(i);
  const per = ((performance.now() - t) * 1e6) / n;
  console.log(`${label.padEnd(58)} ${per.toFixed(0).padStart(6)} ns`);
  return per;
}
async function nsAsync(label: string, n: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 20_000; i++) await fn();
  const t = performance.now();
  for (let i = 0; i < n; i++) await fn();
  const per = ((performance.now() - t) * 1e6) / n;
  console.log(`${label.padEnd(58)} ${per.toFixed(0).padStart(6)} ns`);
  return per;
}

const rm = metrics.route("cost-route");
const statuses = [200, 200, 200, 404, 201, 500];
ns("count one request (requests_total + histogram)", 2_000_000, (i) => rm.observe("GET", statuses[i % 6]!, (i % 100) / 1000));
ns("generateRequestId()", 2_000_000, () => generateRequestId());
ns("crypto.randomUUID()", 2_000_000, () => randomUUID());
ns("traceHeaders(): none incoming (new trace)", 1_000_000, () => traceHeaders(null, null));
ns("traceHeaders(): valid incoming", 1_000_000, () => traceHeaders("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "a=1"));

const info = { remoteAddress: "127.0.0.1", secure: false };
const req = new Request("http://api.test/some/path?x=1", { headers: { host: "api.test" } });
const inner = (_r: Request) => Promise.resolve(new Response(null, { status: 204 }));
const bare = (r: Request) => inner(r);
const wrapped = observed((r) => inner(r), () => false);
const base = await nsAsync("handler alone (null body)", 300_000, () => bare(req));
setAccessLogSink(null);
const noLog = await nsAsync("observed(): id + counting, access log off", 300_000, () => wrapped(req, info));
let bytes = 0;
setAccessLogSink((line) => {
  bytes += line.length;
});
const withLog = await nsAsync("observed(): id + counting + access line (JSON)", 300_000, () => wrapped(req, info));
console.log(`=> counting and id: ${(noLog - base).toFixed(0)} ns a request; the access line adds ${(withLog - noLog).toFixed(0)} ns (${bytes > 0 ? "written" : "?"})`);

// A small backend body, read whole by forward.ts: nothing to watch.
const small = new Uint8Array(600);
const smallInner = () => Promise.resolve(new Response(small, { headers: { "content-length": "600" } }));
const smallObserved = observed((_r, _i, rec) => {
  rec.streamed = true;
  return smallInner();
}, () => false);
setAccessLogSink(null);
const smallBare = await nsAsync("600-byte body, read (bare)", 200_000, async () => (await smallInner()).arrayBuffer());
const smallSeen = await nsAsync("600-byte body, read (observed, log off)", 200_000, async () => (await smallObserved(req, info)).arrayBuffer());
console.log(`=> a small proxied body: ${(smallSeen - smallBare).toFixed(0)} ns a request`);

// A streamed body: one more stream layer, per chunk.
const chunk = new Uint8Array(64 * 1024);
const CHUNKS = 64;
const body = () =>
  new ReadableStream<Uint8Array>({
    start(c) {
      for (let i = 0; i < CHUNKS; i++) c.enqueue(chunk);
      c.close();
    },
  });
const streamedInner = () => Promise.resolve(new Response(body()));
const streamed = observed((_r, _i, rec) => {
  rec.streamed = true;
  return streamedInner();
}, () => false);
// Read chunk by chunk as a listener does (arrayBuffer() would add a 4 MiB copy to both).
const drain = async (res: Response) => {
  const r = res.body!.getReader();
  for (let i = 0; i <= CHUNKS; i++) if ((await r.read()).done) break;
};
const plain = await nsAsync("4 MiB body in 64 KiB chunks, read (no watch)", 5_000, async () => drain(await streamedInner()));
const watched = await nsAsync("4 MiB body in 64 KiB chunks, read (watched)", 5_000, async () => drain(await streamed(req, info)));
console.log(`=> watching a body: ${((watched - plain) / CHUNKS).toFixed(0)} ns a chunk`);
