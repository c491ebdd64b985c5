// forward() called directly against a real backend on 127.0.0.1. Wire-level behaviour through a
// proxy is in proxy-wire.test.ts.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { errorResponse, GatewayError, RequestBodyError } from "../../../src/errors.ts";
import { forward, type ForwardOptions, type ForwardTarget } from "../../../src/proxy/forward.ts";
import { backendRequestHeaders } from "../../../src/proxy/headers.ts";
import { TargetLimiter, UpstreamBudget } from "../../../src/proxy/limiter.ts";
import { hostHeader, targetOrigin } from "../../../src/proxy/url.ts";
import type { UpstreamFetch } from "../../../src/runtime/types.ts";
import { type EchoBackend, type EchoBody, startEchoBackend } from "../../helpers/echo-backend.ts";

const upstreamFetch: UpstreamFetch = (url, init) => fetch(url, { ...init, decompress: false } as RequestInit);

function makeTarget(port: number, tls = false): ForwardTarget {
  const t = { hostname: "127.0.0.1", port, tls };
  return { ...t, weight: 1, fetch: upstreamFetch, origin: targetOrigin(t), hostHeader: hostHeader(t) };
}

const ctx = { clientIp: "203.0.113.9", trusted: false, secure: false, host: "api.example:8080" };

function options(target: ForwardTarget, over: Partial<ForwardOptions> = {}): ForwardOptions {
  return {
    target,
    path: "/",
    search: "",
    headers: backendRequestHeaders(new Headers(), ctx, null, null),
    preserveHost: false,
    clientHost: "api.example:8080",
    method: "GET",
    body: null,
    timeoutMs: 5000,
    ...over,
  };
}

async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error("expected forward() to reject");
}

let backend: EchoBackend;
let target: ForwardTarget;

beforeAll(async () => {
  backend = await startEchoBackend();
  target = makeTarget(backend.port);
});

afterAll(async () => {
  await backend?.stop();
});

describe("forward() to a backend", () => {
  test("sends method, path, query (minus wiped params, otherwise byte for byte) and body", async () => {
    const res = await forward(
      options(target, {
        method: "POST",
        path: "/v1/items",
        search: "?b=%20x&apikey=s3cret&a=1&a=2&c&api%6Bey=again&d=%zz",
        wipeQuery: new Set(["apikey"]),
        headers: backendRequestHeaders(new Headers({ "content-type": "text/plain", "content-length": "5" }), ctx, null, null),
        body: new Response("hello").body,
      }),
    );
    const echo = (await res.json()) as EchoBody;
    expect(echo.method).toBe("POST");
    expect(echo.path).toBe("/v1/items");
    expect(echo.query).toBe("?b=%20x&a=1&a=2&c&d=%zz");
    expect(echo.bodyLength).toBe(5);
    expect(Object.fromEntries(echo.headers)["content-length"]).toBe("5");
  });

  test("Host is the target's host:port unless preserveHost sends the client's", async () => {
    const own = (await (await forward(options(target))).json()) as EchoBody;
    expect(Object.fromEntries(own.headers).host).toBe(`127.0.0.1:${backend.port}`);
    const kept = (await (await forward(options(target, { preserveHost: true }))).json()) as EchoBody;
    expect(Object.fromEntries(kept.headers).host).toBe("api.example:8080");
  });

  test("does not follow redirects", async () => {
    const res = await forward(options(target, { path: "/status/302", search: "?location=/elsewhere" }));
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/elsewhere");
    await res.body?.cancel();
  });

  test("HEAD, 204 and 304 responses have no body", async () => {
    for (const [method, path] of [["HEAD", "/"], ["GET", "/status/204"], ["GET", "/status/304"]] as const) {
      const res = await forward(options(target, { method, path }));
      expect(res.body).toBeNull();
    }
  });

  test("backend statuses pass through with their body", async () => {
    const res = await forward(options(target, { path: "/status/503" }));
    expect(res.status).toBe(503);
    expect(((await res.json()) as EchoBody).path).toBe("/status/503");
  });

  test("a refused connection is a 502 ERR_UPSTREAM_REFUSED carrying the cause", async () => {
    const closed = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") });
    const port = closed.port!;
    await closed.stop(true);
    const err = await rejection(forward(options(makeTarget(port))));
    expect(err.status).toBe(502);
    expect(err.code).toBe("ERR_UPSTREAM_REFUSED");
    expect(err.message).toBe(
      "Something went wrong, the connection to backend service was refused, you should try later. Thanks for your understanding",
    );
    expect(err.cause).toBeDefined();
    const res = errorResponse(err);
    expect(res.status).toBe(502);
    expect(res.headers.get("otoroshi-error-code")).toBe("ERR_UPSTREAM_REFUSED");
  });

  test("a backend slower than timeoutMs is a 504 ERR_UPSTREAM_TIMEOUT, without waiting for it", async () => {
    const started = performance.now();
    const err = await rejection(forward(options(target, { path: "/slow/5000", timeoutMs: 200 })));
    const elapsed = performance.now() - started;
    expect(err.status).toBe(504);
    expect(err.code).toBe("ERR_UPSTREAM_TIMEOUT");
    expect(err.message).toBe(
      "Something went wrong, the backend service does not respond quickly enough, you should try later. Thanks for your understanding",
    );
    expect(elapsed).toBeLessThan(2000);
  });

  test("the timeout stops at the response headers: a body read later is not cut", async () => {
    const res = await forward(options(target, { path: "/bytes/5000000", search: "?chunked=1", timeoutMs: 200 }));
    await Bun.sleep(400);
    expect((await res.arrayBuffer()).byteLength).toBe(5_000_000);
  });

  test("a TLS failure is a 502 ERR_UPSTREAM_ERROR", async () => {
    const err = await rejection(forward(options(makeTarget(backend.port, true))));
    expect(err.status).toBe(502);
    expect(err.code).toBe("ERR_UPSTREAM_ERROR");
    expect(err.message).toBe("Something went wrong, you should try later. Thanks for your understanding");
    expect(err.cause).toBeDefined();
  });

  test("a client that goes away aborts the upstream call: 499 ERR_CLIENT_CLOSED, not a backend error", async () => {
    const gone = new AbortController();
    setTimeout(() => gone.abort(), 100);
    const err = await rejection(forward(options(target, { path: "/slow/5000", signal: gone.signal })));
    expect(err.status).toBe(499);
    expect(err.code).toBe("ERR_CLIENT_CLOSED");
    const already = AbortSignal.abort();
    expect((await rejection(forward(options(target, { signal: already })))).code).toBe("ERR_CLIENT_CLOSED");
  });

  test("an upload the client broke off is 400 (RequestBodyError), a refusal that cut it keeps its status", async () => {
    // An UpstreamFetch that says when reading the request body failed, as the contract asks.
    const marking: UpstreamFetch = async (url, init) => {
      const body = init.body as ReadableStream<Uint8Array>;
      try {
        for await (const _ of body as unknown as AsyncIterable<Uint8Array>) void _;
      } catch (e) {
        throw new RequestBodyError(e);
      }
      return fetch(url, { ...init, body: null });
    };
    const broken = (reason: unknown) =>
      new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array(4));
          c.error(reason);
        },
      });
    const t = { ...target, fetch: marking };
    const cut = await rejection(forward(options(t, { method: "POST", body: broken(new Error("connection reset by client")) })));
    expect(cut.status).toBe(400);
    expect(cut.code).toBe("ERR_BAD_REQUEST");
    const tooLarge = new GatewayError(413, "ERR_PAYLOAD_TOO_LARGE", "too large");
    expect(await rejection(forward(options(t, { method: "POST", body: broken(tooLarge) })))).toBe(tooLarge);
  });
});

describe("forward() with a connection limit", () => {
  const limited = (max: number, queue: number) => {
    const lim = new TargetLimiter(max, queue, new UpstreamBudget(100));
    return { lim, t: { ...target, limiter: lim } };
  };

  test("the slot is held until the response body has been read, then handed to the waiting call", async () => {
    const { lim, t } = limited(1, 1);
    const first = await forward(options(t, { path: "/bytes/1000000", search: "?chunked=1" }));
    expect(lim.active).toBe(1);
    const second = forward(options(t));
    await Bun.sleep(0);
    expect(lim.queued).toBe(1);
    // A third call finds the queue full: refused at once.
    const third = await rejection(forward(options(t)));
    expect(third.status).toBe(503);
    expect(third.code).toBe("ERR_UPSTREAM_BUSY");
    expect((await first.arrayBuffer()).byteLength).toBe(1_000_000);
    expect(lim.queued).toBe(0);
    const res = await second;
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    expect(lim.active).toBe(0);
  });

  test("a client cancelling the body releases the slot", async () => {
    const { lim, t } = limited(1, 0);
    const res = await forward(options(t, { path: "/bytes/5000000", search: "?chunked=1" }));
    const reader = res.body!.getReader();
    await reader.read();
    expect(lim.active).toBe(1);
    await reader.cancel();
    expect(lim.active).toBe(0);
  });

  test("small bodies, bodiless answers and failures release the slot before forward() returns", async () => {
    const { lim, t } = limited(1, 0);
    const small = await forward(options(t));
    expect(lim.active).toBe(0);
    expect(((await small.json()) as EchoBody).path).toBe("/");
    for (const [method, path] of [["HEAD", "/"], ["GET", "/status/204"], ["GET", "/status/304"]] as const) {
      expect((await forward(options(t, { method, path }))).body).toBeNull();
      expect(lim.active).toBe(0);
    }
    expect((await rejection(forward(options(t, { path: "/slow/5000", timeoutMs: 100 })))).status).toBe(504);
    expect(lim.active).toBe(0);
  });

  test("a client that leaves while its call waits gets 499 and gives its place up", async () => {
    const { lim, t } = limited(1, 1);
    const first = await forward(options(t, { path: "/bytes/1000000", search: "?chunked=1" }));
    const gone = new AbortController();
    const waiting = forward(options(t, { signal: gone.signal }));
    await Bun.sleep(0);
    expect(lim.queued).toBe(1);
    gone.abort();
    expect((await rejection(waiting)).status).toBe(499);
    expect(lim.queued).toBe(0);
    await first.body!.cancel();
    expect(lim.active).toBe(0);
  });
});
