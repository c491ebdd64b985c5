import { describe, expect, test } from "bun:test";
import { compileAddressMatcher, isLoopback, parseCidr } from "../../../src/net/cidr.ts";

describe("parseCidr", () => {
  test("accepts addresses and networks of both families", () => {
    for (const ok of ["10.0.0.0/8", "127.0.0.1", "0.0.0.0/0", "::1", "fd00::/8", "::/0", "2001:db8::/32", "::ffff:10.0.0.0/104", "1:2:3:4:5:6:7:8/128", "::ffff:1.2.3.4"]) {
      expect(parseCidr(ok)).toEqual({ ok: true });
    }
  });

  test("refuses malformed entries with a message naming the entry", () => {
    for (
      const bad of [
        "",
        "10.0.0",
        "10.0.0.256",
        "10.0.0.1/33",
        "::1/129",
        "10.0.0.0/",
        "10.0.0.0/-1",
        "010.0.0.1",
        "1:2:3:4:5:6:7:8:9",
        "1::2::3",
        "fe80::1%eth0",
        "localhost",
        "::1/08",
        "1.2.3.4 /8",
        "gggg::1",
      ]
    ) {
      const r = parseCidr(bad);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.message).toContain(`"${bad.trim()}`);
    }
  });

  test("says which prefix lengths are allowed", () => {
    const r = parseCidr("10.0.0.0/40");
    expect(r.ok ? "" : r.message).toContain("0-32");
    const r6 = parseCidr("fd00::/200");
    expect(r6.ok ? "" : r6.message).toContain("0-128");
  });
});

describe("compileAddressMatcher", () => {
  const trusted = compileAddressMatcher(["10.0.0.0/8", "127.0.0.1", "::1", "fd00::/8", "192.168.1.128/25"]);

  test("matches IPv4 networks and exact addresses", () => {
    expect(trusted("10.0.0.1")).toBe(true);
    expect(trusted("10.255.255.255")).toBe(true);
    expect(trusted("11.0.0.1")).toBe(false);
    expect(trusted("127.0.0.1")).toBe(true);
    expect(trusted("127.0.0.2")).toBe(false);
    expect(trusted("192.168.1.200")).toBe(true);
    expect(trusted("192.168.1.127")).toBe(false);
  });

  test("matches IPv6 networks and exact addresses in any text form", () => {
    expect(trusted("::1")).toBe(true);
    expect(trusted("0:0:0:0:0:0:0:1")).toBe(true);
    expect(trusted("fd12:3456::1")).toBe(true);
    expect(trusted("FD00::ABCD")).toBe(true);
    expect(trusted("fe80::1")).toBe(false);
    expect(trusted("::2")).toBe(false);
    expect(trusted("fe80::1%eth0")).toBe(false);
    expect(trusted("fd00::1%eth0")).toBe(true);
  });

  test("matches IPv4-mapped IPv6 peers against IPv4 networks", () => {
    expect(trusted("::ffff:10.1.2.3")).toBe(true);
    expect(trusted("::ffff:a01:203")).toBe(true);
    expect(trusted("::FFFF:127.0.0.1")).toBe(true);
    expect(trusted("::ffff:11.1.2.3")).toBe(false);
  });

  test("mapped CIDRs in the config describe IPv4 space", () => {
    const m = compileAddressMatcher(["::ffff:10.0.0.0/104"]);
    expect(m("10.9.9.9")).toBe(true);
    expect(m("::ffff:10.9.9.9")).toBe(true);
    expect(m("11.0.0.0")).toBe(false);
  });

  test("::/0 and 0.0.0.0/0 mean everything of their family (::/0 includes mapped IPv4)", () => {
    const all6 = compileAddressMatcher(["::/0"]);
    expect(all6("2001:db8::1")).toBe(true);
    expect(all6("1.2.3.4")).toBe(true);
    const all4 = compileAddressMatcher(["0.0.0.0/0"]);
    expect(all4("1.2.3.4")).toBe(true);
    expect(all4("::ffff:1.2.3.4")).toBe(true);
    expect(all4("2001:db8::1")).toBe(false);
  });

  test("a host-bits-set network is masked like nginx and Go do", () => {
    const m = compileAddressMatcher(["10.1.2.3/8"]);
    expect(m("10.200.0.1")).toBe(true);
  });

  test("garbage peers and an empty list match nothing", () => {
    expect(trusted("")).toBe(false);
    expect(trusted("not-an-ip")).toBe(false);
    expect(trusted("10.0.0.1.5")).toBe(false);
    expect(trusted("10.0.0.1:8080")).toBe(false);
    expect(compileAddressMatcher([])("127.0.0.1")).toBe(false);
  });

  test("throws on an invalid entry (config validation uses parseCidr first)", () => {
    expect(() => compileAddressMatcher(["10.0.0.0/99"])).toThrow("prefix length");
  });

  test("matching an IPv4 peer is fast (precompiled, no allocation)", () => {
    const big = compileAddressMatcher(Array.from({ length: 20 }, (_, i) => `10.${i}.0.0/16`));
    const start = performance.now();
    let hits = 0;
    for (let i = 0; i < 200_000; i++) if (big("10.19.3.4")) hits++;
    const perCallUs = ((performance.now() - start) * 1000) / 200_000;
    expect(hits).toBe(200_000);
    expect(perCallUs).toBeLessThan(5);
  });
});

describe("isLoopback", () => {
  test("recognises loopback in every form", () => {
    for (const ip of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) expect(isLoopback(ip)).toBe(true);
    for (const ip of ["10.0.0.1", "::2", "128.0.0.1", "::ffff:10.0.0.1", ""]) expect(isLoopback(ip)).toBe(false);
  });
});
