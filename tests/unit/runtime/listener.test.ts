// The runtime-neutral deadlines the Deno listener uses (src/runtime/listener.ts), with servers
// that only record what they are asked; the real listener is in deno-smoke.ts and the e2e test.
import { describe, expect, test } from "bun:test";
import { ConnectionDeadlines, connectionTimeouts, HEADER_TIMEOUT_MS } from "../../../src/runtime/listener.ts";

describe("connectionTimeouts", () => {
  test("the head deadline is 10 s, or the idle timeout when shorter; checked at most every second", () => {
    expect(HEADER_TIMEOUT_MS).toBe(10_000);
    expect(connectionTimeouts()).toEqual({ headerMs: 10_000, idleMs: 30_000, checkMs: 1000 });
    expect(connectionTimeouts(4)).toEqual({ headerMs: 4000, idleMs: 4000, checkMs: 1000 });
    expect(connectionTimeouts(1)).toEqual({ headerMs: 1000, idleMs: 1000, checkMs: 250 });
  });
});

function fakeServer() {
  let end!: () => void;
  const finished = new Promise<void>((r) => (end = r));
  const calls = { shutdown: 0 };
  return { server: { finished, shutdown: async () => void calls.shutdown++ }, end, calls };
}

/** Resolves with true once the signal aborts, false after ms. */
const abortedWithin = (signal: AbortSignal, ms: number) =>
  new Promise<boolean>((resolve) => {
    if (signal.aborted) return resolve(true);
    const t = setTimeout(() => resolve(false), ms);
    signal.addEventListener("abort", () => (clearTimeout(t), resolve(true)), { once: true });
  });

describe("ConnectionDeadlines", () => {
  test("closes a silent connection and an idle one after its answer, never one being answered", async () => {
    const deadlines = new ConnectionDeadlines(1);
    const silent = deadlines.add();
    const answering = deadlines.add();
    const s1 = fakeServer();
    const s2 = fakeServer();
    silent.served(s1.server);
    answering.served(s2.server);
    let answered!: () => void;
    answering.request(new Promise<void>((r) => (answered = r)));
    expect(await abortedWithin(silent.signal, 5000)).toBe(true);
    // Well past the 1 s deadline: the connection with a request in flight stays.
    expect(await abortedWithin(answering.signal, 1500)).toBe(false);
    answered();
    expect(await abortedWithin(answering.signal, 5000)).toBe(true);
    s1.end();
    s2.end();
    await deadlines.stop();
  });

  test("stop: idle connections close at once, busy ones are shut down gracefully; forced stop closes all", async () => {
    const deadlines = new ConnectionDeadlines(30);
    const idle = deadlines.add();
    const busy = deadlines.add();
    const s1 = fakeServer();
    const s2 = fakeServer();
    idle.served(s1.server);
    busy.served(s2.server);
    busy.request(new Promise<void>(() => {}));
    const stopped = deadlines.stop();
    expect(idle.signal.aborted).toBe(true);
    expect(busy.signal.aborted).toBe(false);
    expect(s2.calls.shutdown).toBe(1);
    s1.end();
    s2.end();
    await stopped;

    const forced = new ConnectionDeadlines(30);
    const inFlight = forced.add();
    const s3 = fakeServer();
    inFlight.served(s3.server);
    inFlight.request(new Promise<void>(() => {}));
    const done = forced.stop(true);
    expect(inFlight.signal.aborted).toBe(true);
    s3.end();
    await done;
  });
});
