// RFC 6455 §5 framing for the gateway's side of a backend WebSocket: the gateway is the client
// there, so the frames it sends are masked (§5.3) and the frames it reads must not be (§5.1).
// Fragments are joined into one message (§5.4 lets an intermediary re-fragment); control frames
// may arrive between them (§5.5).

import { randomFillSync } from "node:crypto";

export const OP_CONT = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

export interface FrameEvents {
  message(data: string | Uint8Array): void;
  control(kind: "ping" | "pong", data: Uint8Array): void;
  /** The peer's close frame: 1005 when it carried no code (§7.1.5). */
  close(code: number, reason: string): void;
  /** A protocol failure: the code to close with (§7.4.1) and why. */
  fail(code: number, reason: string): void;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** §7.4: the codes an endpoint may put in a close frame. */
export function sendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** Reads the frames a backend sends, chunk by chunk, joining fragments up to `maxMessage` bytes. */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  private fragments: Uint8Array[] = [];
  private fragmentBytes = 0;
  private fragmentOp = -1;
  private done = false;
  private readonly events: FrameEvents;
  private readonly maxMessage: number;

  constructor(events: FrameEvents, maxMessage: number) {
    this.events = events;
    this.maxMessage = maxMessage;
  }

  push(chunk: Uint8Array): void {
    if (this.done) return;
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    while (!this.done && this.frame()) {
      // one complete frame handled per turn
    }
  }

  private fail(code: number, reason: string): false {
    this.done = true;
    this.chunks = [];
    this.fragments = [];
    this.events.fail(code, reason);
    return false;
  }

  /** The first n buffered bytes (copied only when they span chunks), without consuming them. */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.byteLength >= n) return first.subarray(0, n);
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.chunks) {
      const part = c.subarray(0, Math.min(c.byteLength, n - at));
      out.set(part, at);
      at += part.byteLength;
      if (at === n) break;
    }
    return out;
  }

  private consume(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const first = this.chunks[0]!;
      if (first.byteLength <= n) {
        n -= first.byteLength;
        this.chunks.shift();
      } else {
        this.chunks[0] = first.subarray(n);
        n = 0;
      }
    }
  }

  /** Handles one frame if all of it is buffered. */
  private frame(): boolean {
    if (this.buffered < 2) return false;
    const h = this.peek(2);
    const fin = (h[0]! & 0x80) !== 0;
    const op = h[0]! & 0x0f;
    if ((h[0]! & 0x70) !== 0) return this.fail(1002, "reserved bits set without an extension");
    if ((h[1]! & 0x80) !== 0) return this.fail(1002, "masked frame from the server");
    let len = h[1]! & 0x7f;
    let head = 2;
    if (len === 126) head = 4;
    else if (len === 127) head = 10;
    if (this.buffered < head) return false;
    if (head > 2) {
      const ext = this.peek(head);
      const view = new DataView(ext.buffer, ext.byteOffset, head);
      len = head === 4 ? view.getUint16(2) : view.getUint32(2) * 2 ** 32 + view.getUint32(6);
    }
    const control = op >= 0x8;
    if (control && (len > 125 || !fin)) return this.fail(1002, "invalid control frame");
    if (!control && this.fragmentBytes + len > this.maxMessage) return this.fail(1009, "message too big");
    if (this.buffered < head + len) return false;
    this.consume(head);
    const payload = len === 0 ? new Uint8Array(0) : this.peek(len);
    this.consume(len);
    if (control) return this.onControl(op, payload);
    if (op === OP_CONT) {
      if (this.fragmentOp < 0) return this.fail(1002, "continuation without a message");
    } else if (op === OP_TEXT || op === OP_BINARY) {
      if (this.fragmentOp >= 0) return this.fail(1002, "new message inside a fragmented one");
      this.fragmentOp = op;
    } else return this.fail(1002, "unknown opcode");
    this.fragments.push(payload);
    this.fragmentBytes += len;
    if (!fin) return true;
    const whole = this.fragments.length === 1 ? this.fragments[0]! : join(this.fragments, this.fragmentBytes);
    const text = this.fragmentOp === OP_TEXT;
    this.fragments = [];
    this.fragmentBytes = 0;
    this.fragmentOp = -1;
    if (!text) this.events.message(whole);
    else {
      let s: string;
      try {
        s = utf8.decode(whole);
      } catch {
        return this.fail(1007, "text message is not UTF-8");
      }
      this.events.message(s);
    }
    return true;
  }

  private onControl(op: number, payload: Uint8Array): boolean {
    if (op === OP_PING || op === OP_PONG) {
      this.events.control(op === OP_PING ? "ping" : "pong", payload);
      return true;
    }
    if (op !== OP_CLOSE) return this.fail(1002, "unknown opcode");
    if (payload.byteLength === 1) return this.fail(1002, "invalid close frame");
    let code = 1005;
    let reason = "";
    if (payload.byteLength >= 2) {
      code = (payload[0]! << 8) | payload[1]!;
      if (!sendableCloseCode(code)) return this.fail(1002, "invalid close code");
      try {
        reason = utf8.decode(payload.subarray(2));
      } catch {
        return this.fail(1007, "close reason is not UTF-8");
      }
    }
    this.done = true;
    this.events.close(code, reason);
    return false;
  }
}

function join(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

// Masking keys come from a CSPRNG (§5.3 / §10.3), drawn in batches to keep the per-frame cost low.
const keys = new Uint8Array(4096);
let keyAt = keys.byteLength;

/** Messages up to this size go out as one buffer (one write); larger ones as header + payload. */
const ONE_BUFFER = 64 * 1024;

/** One masked frame (FIN set), as the buffers to write in order. */
export function encodeFrame(op: number, data: string | Uint8Array): Uint8Array[] {
  const payload = typeof data === "string" ? encoder.encode(data) : data;
  const len = payload.byteLength;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const headLen = 6 + ext;
  const one = len <= ONE_BUFFER;
  const header = new Uint8Array(one ? headLen + len : headLen);
  header[0] = 0x80 | op;
  if (ext === 0) header[1] = 0x80 | len;
  else if (ext === 2) {
    header[1] = 0x80 | 126;
    header[2] = len >>> 8;
    header[3] = len & 0xff;
  } else {
    header[1] = 0x80 | 127;
    const view = new DataView(header.buffer);
    view.setUint32(2, Math.floor(len / 2 ** 32));
    view.setUint32(6, len >>> 0);
  }
  if (keyAt + 4 > keys.byteLength) {
    randomFillSync(keys);
    keyAt = 0;
  }
  const k0 = keys[keyAt]!, k1 = keys[keyAt + 1]!, k2 = keys[keyAt + 2]!, k3 = keys[keyAt + 3]!;
  keyAt += 4;
  header[2 + ext] = k0;
  header[3 + ext] = k1;
  header[4 + ext] = k2;
  header[5 + ext] = k3;
  const masked = one ? header.subarray(headLen) : new Uint8Array(len);
  let i = 0;
  for (const end = len - 3; i < end; i += 4) {
    masked[i] = payload[i]! ^ k0;
    masked[i + 1] = payload[i + 1]! ^ k1;
    masked[i + 2] = payload[i + 2]! ^ k2;
    masked[i + 3] = payload[i + 3]! ^ k3;
  }
  const key = [k0, k1, k2, k3];
  for (; i < len; i++) masked[i] = payload[i]! ^ key[i & 3]!;
  return one ? [header] : [header, masked];
}

/** A close frame's payload (§5.5.1): no code for 1005, else the code and a reason cut to 123 bytes. */
export function closePayload(code: number, reason: string): Uint8Array {
  if (code === 1005 || !sendableCloseCode(code)) return new Uint8Array(0);
  let r = encoder.encode(reason);
  if (r.byteLength > 123) r = r.subarray(0, 123);
  const out = new Uint8Array(2 + r.byteLength);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(r, 2);
  return out;
}
