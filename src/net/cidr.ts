// IP address and CIDR matching for `server.trustedProxies`.
//
// Lists are compiled once per snapshot: IPv4 networks become uint32 net/mask pairs, IPv6
// networks bigint pairs. IPv4-mapped IPv6 addresses (RFC 4291 §2.5.5.2, "::ffff:1.2.3.4", what a
// dual-stack socket reports for an IPv4 peer) are folded to IPv4 on both sides, so "10.0.0.0/8"
// matches "::ffff:10.1.2.3" and "::ffff:10.0.0.0/104" matches "10.1.2.3".

export type AddressMatcher = (ip: string) => boolean;

type Parsed = { v: 4; n: number } | { v: 6; n: bigint };

const V6_ALL = (1n << 128n) - 1n;
const MAPPED_PREFIX = 0xffffn << 32n;

/** Parses dotted IPv4 (four decimal octets, no leading zeros) to a uint32, or -1. */
function parseV4(s: string, start = 0, end = s.length): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      // "010" is octal to some parsers and decimal to others: refuse the ambiguity.
      if (digits > 0 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (octet > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + octet;
}

/** Parses an IPv6 address (RFC 4291 §2.2 text forms, optional zone id dropped) to a bigint, or -1n. */
function parseV6(s: string): bigint {
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (s.length < 2) return -1n;
  const groups: number[] = [];
  let gap = -1;
  let i = 0;
  if (s.startsWith("::")) {
    gap = 0;
    i = 2;
  }
  while (i < s.length) {
    let j = i;
    while (j < s.length && s.charCodeAt(j) !== 58 /* : */) j++;
    const part = s.slice(i, j);
    if (part.includes(".")) {
      // Embedded IPv4 in the last 32 bits (RFC 4291 §2.2 form 3).
      if (j !== s.length) return -1n;
      const v4 = parseV4(part);
      if (v4 < 0) return -1n;
      groups.push(v4 >>> 16, v4 & 0xffff);
    } else {
      if (part.length === 0 || part.length > 4) return -1n;
      const g = Number.parseInt(part, 16);
      if (Number.isNaN(g) || !/^[0-9a-fA-F]+$/.test(part)) return -1n;
      groups.push(g);
    }
    if (j === s.length) break;
    if (s.charCodeAt(j + 1) === 58) {
      if (gap >= 0) return -1n; // at most one "::"
      gap = groups.length;
      i = j + 2;
    } else {
      i = j + 1;
      if (i === s.length) return -1n; // trailing single ':'
    }
  }
  if (gap < 0 ? groups.length !== 8 : groups.length > 7) return -1n;
  let n = 0n;
  const missing = 8 - groups.length;
  for (let k = 0; k < groups.length; k++) {
    if (k === gap) n <<= BigInt(16 * missing);
    n = (n << 16n) | BigInt(groups[k]!);
  }
  if (gap === groups.length) n <<= BigInt(16 * missing);
  return n;
}

function parseAddress(s: string): Parsed | null {
  if (s.includes(":")) {
    const n = parseV6(s);
    if (n < 0n) return null;
    if (n >> 32n === 0xffffn) return { v: 4, n: Number(n & 0xffffffffn) };
    return { v: 6, n };
  }
  const n = parseV4(s);
  return n < 0 ? null : { v: 4, n };
}

interface CompiledEntry {
  v: 4 | 6;
  net: number | bigint;
  mask: number | bigint;
}

function v4Mask(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

function v6Mask(bits: number): bigint {
  return bits === 0 ? 0n : (V6_ALL << BigInt(128 - bits)) & V6_ALL;
}

function compileEntry(text: string): CompiledEntry[] | string {
  const slash = text.indexOf("/");
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const addr = addrText.includes("%") ? null : parseAddress(addrText);
  if (!addr) return `"${text}" is not an IP address or CIDR (e.g. "10.0.0.0/8", "::1", "fd00::/8")`;
  const mappedForm = addr.v === 4 && addrText.includes(":");
  const max = addr.v === 4 && !mappedForm ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    bits = /^(0|[1-9][0-9]{0,2})$/.test(p) ? Number(p) : -1;
    if (bits < 0 || bits > max) return `"${text}": prefix length must be 0-${max}`;
  }
  if (mappedForm) {
    // "::ffff:a.b.c.d/p" describes IPv4 space: p >= 96 maps to an IPv4 prefix of p - 96.
    if (bits >= 96) return [{ v: 4, net: (addr.n as number) & v4Mask(bits - 96), mask: v4Mask(bits - 96) }];
    const mask = v6Mask(bits);
    return [{ v: 6, net: (MAPPED_PREFIX | BigInt(addr.n)) & mask, mask }, { v: 4, net: 0, mask: 0 }];
  }
  if (addr.v === 4) {
    const mask = v4Mask(bits);
    return [{ v: 4, net: (addr.n & mask) >>> 0, mask }];
  }
  const mask = v6Mask(bits);
  const net = addr.n & mask;
  const entries: CompiledEntry[] = [{ v: 6, net, mask }];
  // A v6 network wider than /96 that contains ::ffff:0:0/96 (e.g. "::/0") also covers IPv4 peers.
  if (bits <= 96 && (MAPPED_PREFIX & mask) === net) entries.push({ v: 4, net: 0, mask: 0 });
  return entries;
}

/** Checks one `trustedProxies` entry; the message is meant for config validation. */
export function parseCidr(text: string): { ok: true } | { ok: false; message: string } {
  const r = compileEntry(text.trim());
  return typeof r === "string" ? { ok: false, message: r } : { ok: true };
}

/** Compiles a list of addresses and CIDRs into a fast predicate. Throws on an invalid entry. */
export function compileAddressMatcher(list: readonly string[]): AddressMatcher {
  const v4net: number[] = [];
  const v4mask: number[] = [];
  const v6net: bigint[] = [];
  const v6mask: bigint[] = [];
  for (const text of list) {
    const r = compileEntry(text.trim());
    if (typeof r === "string") throw new Error(r);
    for (const e of r) {
      if (e.v === 4) {
        v4net.push(e.net as number);
        v4mask.push(e.mask as number);
      } else {
        v6net.push(e.net as bigint);
        v6mask.push(e.mask as bigint);
      }
    }
  }
  const n4 = new Uint32Array(v4net);
  const m4 = new Uint32Array(v4mask);
  const count4 = n4.length;
  const count6 = v6net.length;
  if (count4 === 0 && count6 === 0) return () => false;
  return (ip: string): boolean => {
    // Plain IPv4 is the common case: no allocation on that path.
    if (!ip.includes(":")) {
      const n = parseV4(ip);
      if (n < 0) return false;
      for (let i = 0; i < count4; i++) if (((n & m4[i]!) >>> 0) === n4[i]) return true;
      return false;
    }
    const a = parseAddress(ip);
    if (!a) return false;
    if (a.v === 4) {
      for (let i = 0; i < count4; i++) if (((a.n & m4[i]!) >>> 0) === n4[i]) return true;
      return false;
    }
    for (let i = 0; i < count6; i++) if ((a.n & v6mask[i]!) === v6net[i]) return true;
    return false;
  };
}

const loopback = compileAddressMatcher(["127.0.0.0/8", "::1"]);

/** True for 127.0.0.0/8 (RFC 1122 §3.2.1.3), ::1 (RFC 4291 §2.5.3) and their mapped forms. */
export function isLoopback(ip: string): boolean {
  return loopback(ip);
}
