// backendRequestHeaders + forward() behind a minimal proxy on 127.0.0.1, seen on the wire: a raw
// HTTP/1.1 client shows exactly which lines the proxy sends, and the echo backend shows what it
// received. Also: 100 MB streamed each way with bounded memory.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { connect } from "node:net";
import { gunzipSync } from "node:zlib";
import { errorResponse, GatewayError } from "../../../src/errors.ts";
import { type AddressMatcher, compileAddressMatcher } from "../../../src/net/cidr.ts";
import { forward, type ForwardTarget } from "../../../src/proxy/forward.ts";
import { backendRequestHeaders } from "../../../src/proxy/headers.ts";
import { hostHeader, targetOrigin } from "../../../src/proxy/url.ts";
import type { UpstreamFetch } from "../../../src/runtime/types.ts";
import { type EchoBackend, type EchoBody, generatedSha256, generatedStream, GZIP_PLAIN_TEXT, startEchoBackend } from "../../helpers/echo-backend.ts";

const upstreamFetch: UpstreamFetch = (url, init) => fetch(url, { ...init, decompress: false } as RequestInit);

function makeTarget(port: number): ForwardTarget {
  const t = { hostname: "127.0.0.1", port, tls: false };
  return { ...t, weight: 1, fetch: upstreamFetch, origin: targetOrigin(t), hostHeader: hostHeader(t) };
}

type TestProxy = ReturnType<typeof startTestProxy>;

/** The gateway's proxy step and nothing else. */
function startTestProxy(target: ForwardTarget, isTrusted: AddressMatcher) {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    maxRequestBodySize: 1024 * 1024 * 1024,
    async fetch(req, srv) {
      const url = new URL(req.url);
      const clientIp = srv.requestIP(req)?.address ?? "";
      const host = req.headers.get("host") ?? "";
      const ctx = { clientIp, trusted: isTrusted(clientIp), secure: false, host };
      try {
        return await forward({
          target,
          path: url.pathname,
          search: url.search,
          headers: backendRequestHeaders(req.headers, ctx, null, null),
          preserveHost: false,
          clientHost: host,
          method: req.method,
          body: req.body,
          timeoutMs: 5000,
          signal: req.signal,
        });
      } catch (err) {
        if (err instanceof GatewayError) return errorResponse(err, req.method);
        throw err;
      }
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, port: server.port!, stop: () => server.stop(true) };
}

interface RawResponse {
  status: number;
  /** Every line of that header, in order (names compared case-insensitively). */
  header(name: string): string[];
  body: string;
}

/** Sends an HTTP/1.1 request exactly as written (the last line should be Connection: close). */
function rawRequest(port: number, lines: string[]): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(lines.join("\r\n") + "\r\n\r\n"));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error("raw request timed out")), 5000);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", reject);
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const split = text.indexOf("\r\n\r\n");
      const [statusLine = "", ...headerLines] = text.slice(0, split).split("\r\n");
      resolve({
        status: Number(statusLine.split(" ")[1]),
        header: (name) =>
          headerLines
            .filter((l) => l.slice(0, l.indexOf(":")).toLowerCase() === name)
            .map((l) => l.slice(l.indexOf(":") + 1).trim()),
        body: text.slice(split + 4),
      });
    });
  });
}

const seenHeaders = (res: RawResponse): Record<string, string> => Object.fromEntries((JSON.parse(res.body) as EchoBody).headers);

let backend: EchoBackend;
let plain: TestProxy;
let trusting: TestProxy;

beforeAll(async () => {
  backend = await startEchoBackend();
  plain = startTestProxy(makeTarget(backend.port), compileAddressMatcher([]));
  trusting = startTestProxy(makeTarget(backend.port), compileAddressMatcher(["127.0.0.1", "::1"]));
});

afterAll(async () => {
  await plain?.stop();
  await trusting?.stop();
  await backend?.stop();
});

const GET = (path: string, ...extra: string[]) => [`GET ${path} HTTP/1.1`, "Host: api.example:8080", ...extra, "Connection: close"];

describe("headers on the wire", () => {
  test("hop-by-hop request headers are stripped, including those named in Connection", async () => {
    const res = await rawRequest(plain.port, [
      ...GET("/echo", "X-Secret-Hop: 1", "Keep-Alive: timeout=5", "TE: trailers", "Proxy-Authorization: Basic Zm9vOmJhcg==", "X-End-To-End: kept").slice(0, -1),
      "Connection: close, X-Secret-Hop",
    ]);
    const seen = seenHeaders(res);
    expect(seen["x-end-to-end"]).toBe("kept");
    for (const name of ["x-secret-hop", "keep-alive", "te", "proxy-authorization"]) expect(seen[name]).toBeUndefined();
    expect(seen.connection ?? "").not.toContain("close");
  });

  test("hop-by-hop response headers are stripped, including those named in Connection", async () => {
    const res = await rawRequest(plain.port, GET("/hop"));
    expect(res.status).toBe(200);
    expect(res.header("x-end-to-end")).toEqual(["kept"]);
    for (const name of ["x-secret-hop", "keep-alive", "proxy-authenticate", "proxy-connection", "trailer", "upgrade"]) {
      expect(res.header(name)).toEqual([]);
    }
    expect(res.body).toBe("hop");
  });

  test("repeated request headers keep every value; Cookie lines are joined with '; '", async () => {
    const res = await rawRequest(plain.port, GET("/echo", "X-Multi: 1", "X-Multi: 2", "Cookie: a=1", "Cookie: b=2"));
    const seen = seenHeaders(res);
    expect(seen["x-multi"]).toBe("1, 2");
    expect(seen.cookie).toBe("a=1; b=2");
  });

  test("two Set-Cookie lines from the backend stay two lines", async () => {
    const res = await rawRequest(plain.port, GET("/set-cookies"));
    expect(res.header("set-cookie")).toEqual(["a=1; Path=/; HttpOnly", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/"]);
  });

  test("a client without Accept-Encoding gets an uncompressed body; the backend was asked for identity", async () => {
    const res = await rawRequest(plain.port, GET("/gzip"));
    expect(res.header("x-seen-accept-encoding")).toEqual(["identity"]);
    expect(res.header("content-encoding")).toEqual([]);
    expect(res.body).toBe(GZIP_PLAIN_TEXT);
  });

  test("a client accepting gzip gets the gzip bytes and Content-Encoding untouched", async () => {
    const res = await fetch(`${plain.url}/gzip`, { headers: { "accept-encoding": "gzip" }, decompress: false } as RequestInit);
    expect(res.headers.get("content-encoding")).toBe("gzip");
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(res.headers.get("content-length")).toBe(String(bytes.byteLength));
    expect(gunzipSync(bytes).toString()).toBe(GZIP_PLAIN_TEXT);
  });

  test("a client without User-Agent does not lend the backend the runtime's (an empty value is sent)", async () => {
    expect(seenHeaders(await rawRequest(plain.port, GET("/echo")))["user-agent"]).toBe("");
  });

  test("X-Forwarded-* from an untrusted peer are replaced by what the proxy saw (W34)", async () => {
    const res = await rawRequest(plain.port, GET("/echo", "X-Forwarded-For: 1.1.1.1", "X-Forwarded-Host: evil.example", "Forwarded: for=1.1.1.1"));
    const seen = seenHeaders(res);
    expect(seen["x-forwarded-for"]).toBe("127.0.0.1");
    expect(seen["x-forwarded-host"]).toBe("api.example:8080");
    expect(seen["x-forwarded-proto"]).toBe("http");
    expect(seen.forwarded).toBeUndefined();
  });

  test("X-Forwarded-For from a trusted peer is kept and extended with the peer address", async () => {
    const res = await rawRequest(trusting.port, GET("/echo", "X-Forwarded-For: 198.51.100.7", "X-Forwarded-Proto: https", "Forwarded: for=198.51.100.7"));
    const seen = seenHeaders(res);
    expect(seen["x-forwarded-for"]).toBe("198.51.100.7, 127.0.0.1");
    expect(seen["x-forwarded-proto"]).toBe("https");
    expect(seen.forwarded).toBe("for=198.51.100.7");
  });

  test("a refused backend answers 502 in Otoroshi's error shape", async () => {
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const port = closed.port!;
    await closed.stop(true);
    const proxy = startTestProxy(makeTarget(port), compileAddressMatcher([]));
    try {
      const res = await fetch(`${proxy.url}/x`);
      expect(res.status).toBe(502);
      expect(res.headers.get("otoroshi-error-code")).toBe("ERR_UPSTREAM_REFUSED");
      expect(((await res.json()) as Record<string, string>)["Otoroshi-Error"]).toContain("connection to backend service was refused");
    } finally {
      await proxy.stop();
    }
  });
});

describe("streaming", () => {
  // Large enough that a buffered copy (at least SIZE) cannot hide under the bound, which leaves
  // room for the GC's own swings when the whole suite shares this process (~20–80 MB seen).
  const SIZE = 256 * 1024 * 1024;
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);

  /** Samples RSS while `work` runs; returns the peak growth over the starting RSS. */
  async function peakRssGrowth(work: () => Promise<void>): Promise<number> {
    Bun.gc(true);
    const base = process.memoryUsage.rss();
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
    try {
      await work();
    } finally {
      clearInterval(sampler);
    }
    return Math.max(peak, process.memoryUsage.rss()) - base;
  }

  test("a 256 MB upload streams through with bounded memory", async () => {
    let echo: { bodyLength: number; bodySha256: string } | undefined;
    const growth = await peakRssGrowth(async () => {
      const res = await fetch(`${plain.url}/upload`, { method: "POST", body: generatedStream(SIZE), duplex: "half" } as RequestInit);
      echo = (await res.json()) as typeof echo;
    });
    console.log(`[proxy-wire] 256 MB upload: peak RSS growth ${mb(growth)} MB`);
    expect(echo).toEqual({ bodyLength: SIZE, bodySha256: generatedSha256(SIZE) });
    // Buffering the body would add at least SIZE.
    expect(growth).toBeLessThan(160 * 1024 * 1024);
  });

  test("a 256 MB download streams through with bounded memory", async () => {
    let received = 0;
    const hash = createHash("sha256");
    const growth = await peakRssGrowth(async () => {
      // The listener may re-frame a streamed body as chunked (RFC 9112 §7.1): assert on bytes.
      const res = await fetch(`${plain.url}/bytes/${SIZE}`);
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        received += value.byteLength;
        hash.update(value);
      }
    });
    console.log(`[proxy-wire] 256 MB download: peak RSS growth ${mb(growth)} MB`);
    expect(received).toBe(SIZE);
    expect(hash.digest("hex")).toBe(generatedSha256(SIZE));
    // Buffering the body would add at least SIZE.
    expect(growth).toBeLessThan(160 * 1024 * 1024);
  });
});
