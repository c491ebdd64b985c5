// The pieces of the access log, request ids, trace context and metrics, one by one.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configureAccessLog, flushAccessLog, reopenAccessLog, setAccessLogSink, writeAccessLine } from "../../../src/monitoring/access-log.ts";
import { metrics, RouteMetrics } from "../../../src/monitoring/metrics.ts";
import { generateRequestId, REQUEST_ID, requestIdFor } from "../../../src/monitoring/request-id.ts";
import { parseTraceparent, traceHeaders } from "../../../src/monitoring/trace.ts";

describe("request ids", () => {
  test("well-formed ids are kept; anything else is replaced by a generated, unique, well-formed one", () => {
    expect(requestIdFor("a.b_c:d-e")).toBe("a.b_c:d-e");
    expect(requestIdFor("x".repeat(128))).toBe("x".repeat(128));
    const seen = new Set<string>();
    for (const bad of [null, "", "x".repeat(129), "a b", "a\tb", "a/b", "ü", "a,b", '"q"']) {
      const id = requestIdFor(bad);
      expect(id).not.toBe(bad);
      expect(id).toMatch(REQUEST_ID);
      seen.add(id);
    }
    for (let i = 0; i < 1000; i++) seen.add(generateRequestId());
    expect(seen.size).toBe(1009);
  });
});

describe("W3C trace context", () => {
  test("parses only valid traceparent values (§3.2)", () => {
    expect(parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).toEqual({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", flags: "01" });
    // A later version may carry more fields (§4.3).
    expect(parseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-more")).toEqual({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", flags: "03" });
    for (
      const bad of [
        null,
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      ]
    ) expect(parseTraceparent(bad)).toBeNull();
  });

  test("the backend's traceparent: same trace, a new span, the sampled bit only; tracestate only beside a valid one", () => {
    const t = traceHeaders("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", "k=v");
    expect(t.traceparent).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(t.traceparent.split("-")[2]).not.toBe("00f067aa0ba902b7");
    expect(t.tracestate).toBe("k=v");
    const fresh = traceHeaders("nonsense", "k=v");
    expect(fresh.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(fresh.tracestate).toBeNull();
    const spans = new Set<string>();
    for (let i = 0; i < 2000; i++) spans.add(traceHeaders(null, null).traceparent);
    expect(spans.size).toBe(2000);
  });
});

describe("metrics", () => {
  test("a method outside the standard set counts as other; statuses as numbers", () => {
    const r = new RouteMetrics("u-route");
    r.observe("FROB", 200, 0.001);
    r.observe("GET", 404, 0.2);
    r.observe("GET", 404, 20);
    expect([...r.requests[9]!]).toEqual([[200, 1]]);
    expect([...r.requests[0]!]).toEqual([[404, 2]]);
    expect(r.count).toBe(3);
    // 0.001 in the first bucket, 0.2 in le=0.25, 20 beyond 10 (+Inf only).
    expect(r.buckets[0]).toBe(1);
    expect(r.buckets[5]).toBe(1);
    expect(r.buckets[r.buckets.length - 1]).toBe(1);
    expect(metrics.route("u-route")).toBe(metrics.route("u-route"));
  });
});

describe("access log writer", () => {
  test("a file: lines appended in order; SIGUSR1's reopen sends new lines to a new file after a rename", () => {
    const dir = mkdtempSync(join(tmpdir(), "oto-al-"));
    const file = join(dir, "access.log");
    const previous = setAccessLogSink(null);
    try {
      configureAccessLog({ enabled: true, file });
      writeAccessLine('{"n":1}');
      writeAccessLine('{"n":2}');
      flushAccessLog();
      renameSync(file, file + ".1");
      writeAccessLine('{"n":3}');
      reopenAccessLog();
      writeAccessLine('{"n":4}');
      flushAccessLog();
      expect(readFileSync(file + ".1", "utf8")).toBe('{"n":1}\n{"n":2}\n{"n":3}\n');
      expect(readFileSync(file, "utf8")).toBe('{"n":4}\n');
      configureAccessLog({ enabled: false });
      writeAccessLine('{"n":5}');
      flushAccessLog();
      expect(readFileSync(file, "utf8")).toBe('{"n":4}\n');
      expect(() => configureAccessLog({ enabled: true, file: join(dir, "missing", "a.log") })).toThrow();
      expect(existsSync(join(dir, "missing"))).toBe(false);
    } finally {
      setAccessLogSink(previous);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
