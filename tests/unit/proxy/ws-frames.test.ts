// RFC 6455 framing of the gateway's backend side (src/proxy/ws-frames.ts): what a backend may
// send, what the gateway refuses (with the close code §7.4.1 names), and what it sends.
import { describe, expect, test } from "bun:test";
import { closePayload, encodeFrame, FrameReader, OP_BINARY, OP_TEXT } from "../../../src/proxy/ws-frames.ts";

type Event = [string, ...unknown[]];
function reader(max = 1024): { r: FrameReader; events: Event[] } {
  const events: Event[] = [];
  const r = new FrameReader({
    message: (d) => events.push(["message", typeof d === "string" ? d : [...d]]),
    control: (k, d) => events.push([k, new TextDecoder().decode(d)]),
    close: (c, why) => events.push(["close", c, why]),
    fail: (c, why) => events.push(["fail", c, why]),
  }, max);
  return { r, events };
}
const frame = (b0: number, payload: number[] | string, masked = false) => {
  const p = typeof payload === "string" ? [...new TextEncoder().encode(payload)] : payload;
  const len = p.length < 126 ? [p.length] : [126, p.length >> 8, p.length & 255];
  if (masked) len[0]! |= 0x80;
  return new Uint8Array([b0, ...len, ...(masked ? [0, 0, 0, 0] : []), ...p]);
};

describe("FrameReader (frames from a backend)", () => {
  test("text and binary, one byte at a time", () => {
    const { r, events } = reader();
    for (const b of [...frame(0x81, "héllo"), ...frame(0x82, [1, 2, 3])]) r.push(new Uint8Array([b]));
    expect(events).toEqual([["message", "héllo"], ["message", [1, 2, 3]]]);
  });
  test("fragments are joined; control frames between them are delivered at once (§5.4, §5.5)", () => {
    const { r, events } = reader();
    r.push(new Uint8Array([...frame(0x01, "ab"), ...frame(0x89, "p"), ...frame(0x00, "cd"), ...frame(0x80, "e")]));
    expect(events).toEqual([["ping", "p"], ["message", "abcde"]]);
  });
  test("a 16-bit length", () => {
    const { r, events } = reader(100_000);
    r.push(frame(0x82, new Array(300).fill(9)));
    expect(events).toEqual([["message", new Array(300).fill(9)]]);
  });
  test("close with code and reason; close without a code is 1005", () => {
    const a = reader();
    a.r.push(frame(0x88, [0x0f, 0xa1, ...new TextEncoder().encode("bye")]));
    expect(a.events).toEqual([["close", 4001, "bye"]]);
    const b = reader();
    b.r.push(frame(0x88, []));
    expect(b.events).toEqual([["close", 1005, ""]]);
  });
  test.each([
    ["a masked frame from the server", frame(0x81, "x", true), 1002],
    ["reserved bits without an extension", frame(0xc1, "x"), 1002],
    ["a fragmented control frame", frame(0x09, "x"), 1002],
    ["a control frame over 125 bytes", frame(0x89, "x".repeat(126)), 1002],
    ["a continuation with no message", frame(0x80, "x"), 1002],
    ["an unknown opcode", frame(0x83, "x"), 1002],
    ["invalid UTF-8 text", frame(0x81, [0xc3, 0x28]), 1007],
    ["a close code that may not be sent (1006)", frame(0x88, [0x03, 0xee]), 1002],
    ["a one-byte close payload", frame(0x88, [0x03]), 1002],
    ["a message over the limit", frame(0x82, new Array(2000).fill(1)), 1009],
  ])("refuses %s", (_why, bytes, code) => {
    const { r, events } = reader();
    r.push(bytes);
    expect(events.length).toBe(1);
    expect(events[0]![0]).toBe("fail");
    expect(events[0]![1]).toBe(code);
  });
  test("a message split over fragments is held to the limit as a whole", () => {
    const { r, events } = reader(10);
    r.push(new Uint8Array([...frame(0x02, new Array(6).fill(1)), ...frame(0x80, new Array(6).fill(1))]));
    expect(events).toEqual([["fail", 1009, "message too big"]]);
  });
});

describe("encodeFrame (frames to a backend)", () => {
  const unmask = (parts: Uint8Array[]) => {
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) all.set(p, (at += p.length) - p.length);
    const len7 = all[1]! & 0x7f;
    const head = len7 < 126 ? 2 : len7 === 126 ? 4 : 10;
    const key = all.subarray(head, head + 4);
    return { b0: all[0], masked: (all[1]! & 0x80) !== 0, payload: all.subarray(head + 4).map((b, i) => b ^ key[i % 4]!) };
  };
  test.each([0, 1, 125, 126, 65535, 65536, 70_000])("masked, FIN set, %i bytes round-trip", (n) => {
    const data = new Uint8Array(n).map((_, i) => i & 255);
    const parts = encodeFrame(OP_BINARY, data);
    const { b0, masked, payload } = unmask(parts);
    expect(b0).toBe(0x82);
    expect(masked).toBe(true);
    expect(Buffer.from(payload).equals(Buffer.from(data))).toBe(true);
  });
  test("masking keys differ between frames (§5.3)", () => {
    const keys = new Set(Array.from({ length: 50 }, () => Buffer.from(encodeFrame(OP_TEXT, "x")[0]!.subarray(2, 6)).toString("hex")));
    expect(keys.size).toBeGreaterThan(45);
  });
  test("close payloads: code + reason, none for 1005, reason cut to fit a control frame", () => {
    expect([...closePayload(1000, "ok")]).toEqual([0x03, 0xe8, 0x6f, 0x6b]);
    expect(closePayload(1005, "ignored").length).toBe(0);
    expect(closePayload(4000, "x".repeat(200)).length).toBe(125);
  });
});
