import { afterAll, describe, expect, test } from "bun:test";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { HealthRegistry, TargetState } from "../../../src/proxy/health.ts";
import { notSent, ReplayableBody } from "../../../src/proxy/retry.ts";
import { GatewayError } from "../../../src/errors.ts";
import { until } from "../../helpers/flip-backend.ts";

const text = (s: ReadableStream<Uint8Array>) => new Response(s).text();
const source = (parts: string[]) =>
  new ReadableStream<Uint8Array>({
    pull(c) {
      const p = parts.shift();
      if (p === undefined) c.close();
      else c.enqueue(new TextEncoder().encode(p));
    },
  });

describe("circuit breaker", () => {
  test("opens after maxErrors consecutive failures, an answer in between resets the count", () => {
    const flags = { suspect: 0 };
    const s = new TargetState("r", "h:1", flags);
    s.maxErrors = 3;
    s.sampleInterval = 60_000;
    s.failure();
    s.failure();
    s.success();
    s.failure();
    s.failure();
    expect(s.breaker()).toBe("closed");
    expect(s.usable()).toBe(true);
    s.failure();
    expect(s.breaker()).toBe("open");
    expect(s.usable()).toBe(false);
    expect(flags.suspect).toBe(1);
    s.success();
    expect(s.breaker()).toBe("closed");
    expect(flags.suspect).toBe(0);
  });

  test("half-open after sampleInterval: usable again, one failure reopens it", async () => {
    const s = new TargetState("r", "h:1", { suspect: 0 });
    s.maxErrors = 1;
    s.sampleInterval = 50;
    s.failure();
    expect(s.usable()).toBe(false);
    await until(() => s.usable(), "the breaker half-opens", 2000);
    expect(s.breaker()).toBe("half-open");
    s.failure();
    expect(s.breaker()).toBe("open");
  });

  test("a removed target leaves the route's count", () => {
    const reg = new HealthRegistry(false);
    const s = reg.get("k", "r", "h:1");
    s.maxErrors = 1;
    s.failure();
    expect(reg.flags("r").suspect).toBe(1);
    reg.retainOnly(new Set());
    expect(reg.status()).toEqual([]);
    expect(s.flags.suspect).toBe(0);
  });
});

describe("what counts as 'nothing was sent'", () => {
  test("refused and connect-phase codes yes; resets, timeouts, client errors no", () => {
    const e = (code: string, status = 502, causeCode?: string) =>
      new GatewayError(status, code as never, "m", {}, { cause: causeCode ? Object.assign(new Error("x"), { code: causeCode }) : undefined });
    expect(notSent(e("ERR_UPSTREAM_REFUSED"))).toBe(true);
    expect(notSent(e("ERR_UPSTREAM_ERROR", 502, "ENOTFOUND"))).toBe(true);
    expect(notSent(e("ERR_UPSTREAM_ERROR", 502, "ECONNRESET"))).toBe(false);
    expect(notSent(e("ERR_UPSTREAM_TIMEOUT", 504))).toBe(false);
    expect(notSent(e("ERR_CLIENT_CLOSED", 499))).toBe(false);
    expect(notSent(new Error("ECONNREFUSED"))).toBe(false);
  });
});

describe("ReplayableBody", () => {
  test("a stream given to a failed call that read part of the body is replayed from the start", async () => {
    const r = new ReplayableBody(source(["ab", "cd", "ef"]));
    const first = r.stream().getReader();
    expect(new TextDecoder().decode((await first.read()).value)).toBe("ab");
    await first.cancel();
    expect(r.replayable).toBe(true);
    expect(await text(r.stream())).toBe("abcdef");
  });

  test("past the limit the body streams on but is no longer replayable", async () => {
    const r = new ReplayableBody(source(["12345", "67890", "abc"]), 8);
    expect(await text(r.stream())).toBe("1234567890abc");
    expect(r.replayable).toBe(false);
  });

  test("an older stream stops giving bytes once a new one is handed out", async () => {
    const r = new ReplayableBody(source(["a", "b"]));
    const old = r.stream();
    const fresh = r.stream();
    expect(await text(old)).toBe("");
    expect(await text(fresh)).toBe("ab");
  });
});

describe("active checks", () => {
  let inFlight = 0;
  let maxInFlight = 0;
  let checks = 0;
  let status = 200;
  let delay = 0;
  const server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    checks++;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => {
      inFlight--;
      res.writeHead(status).end();
    }, delay);
  });
  const ready = new Promise<number>((r) => server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port)));
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const target = async () => {
    const port = await ready;
    return { origin: `http://127.0.0.1:${port}`, hostHeader: `127.0.0.1:${port}`, fetch: (u: string, i: RequestInit) => fetch(u, i) };
  };
  const settings = { enabled: true, url: "/health", intervalMs: 100, timeoutMs: 150, unhealthyThreshold: 2, healthyThreshold: 2 };

  test("thresholds: down after 2 failures in a row, up after 2 passes in a row", async () => {
    const s = new TargetState("r", "t", { suspect: 0 });
    status = 500;
    s.configureChecks(settings, await target());
    await until(() => s.status().check === "down", "down");
    expect(s.usable()).toBe(false);
    status = 200;
    await until(() => s.status().check === "up", "up");
    expect(s.usable()).toBe(true);
    s.stopChecks();
  });

  test("a check slower than its timeout fails; never more than one check in flight per target; stopping stops", async () => {
    const s = new TargetState("r", "t", { suspect: 0 });
    delay = 400; // > timeoutMs and > intervalMs
    maxInFlight = 0;
    s.configureChecks(settings, await target());
    await until(() => s.status().check === "down", "timeouts take it down");
    expect(s.status().lastCheckProblem).toBe("timeout");
    s.stopChecks();
    await until(() => inFlight === 0, "the backend finished its answers");
    const after = checks;
    await new Promise((r) => setTimeout(r, 300));
    expect(checks).toBe(after);
    // Aborted checks may still be answered server side for a moment: at most the one just aborted.
    expect(maxInFlight).toBeLessThanOrEqual(2);
    delay = 0;
  });
});

describe("what a check reports", () => {
  test("a refused check is reported by its code, never by its message (which names the address)", async () => {
    const { deadPort } = await import("../../helpers/flip-backend.ts");
    const port = await deadPort();
    const s = new TargetState("r", "t", { suspect: 0 });
    s.configureChecks({ enabled: true, url: "/health", intervalMs: 100, timeoutMs: 1000, unhealthyThreshold: 1, healthyThreshold: 1 }, {
      origin: `http://127.0.0.1:${port}`,
      hostHeader: `127.0.0.1:${port}`,
      fetch: (u, i) => fetch(u, i),
    });
    await until(() => s.status().check === "down", "down");
    s.stopChecks();
    expect(s.status().lastCheckProblem).toBe("ECONNREFUSED");
  });
});
