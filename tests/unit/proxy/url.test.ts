import { describe, expect, test } from "bun:test";
import { hostHeader, joinPath, stripPrefix, targetOrigin } from "../../../src/proxy/url.ts";

describe("joinPath", () => {
  test("puts exactly one '/' between root and path (W29: Otoroshi gives /v1users)", () => {
    expect(joinPath("/", "/users")).toBe("/users");
    expect(joinPath("/v1", "/users")).toBe("/v1/users");
    expect(joinPath("/v1/", "/users")).toBe("/v1/users");
    expect(joinPath("/v1", "users")).toBe("/v1/users");
    expect(joinPath("/v1/", "/")).toBe("/v1/");
    expect(joinPath("/v1", "/")).toBe("/v1/");
  });

  test("an empty root or rest leaves the other alone", () => {
    expect(joinPath("", "/users")).toBe("/users");
    expect(joinPath("/", "")).toBe("/");
    expect(joinPath("/v1", "")).toBe("/v1");
    expect(joinPath("", "users")).toBe("/users");
  });

  test("keeps the client's own path bytes (no '//' collapsing inside it, no decoding)", () => {
    expect(joinPath("/v1", "/a//b/%2F")).toBe("/v1/a//b/%2F");
  });
});

describe("stripPrefix", () => {
  test("strips a literal prefix on a segment boundary", () => {
    expect(stripPrefix("/api/users", "/api")).toBe("/users");
    expect(stripPrefix("/api", "/api")).toBe("/");
    expect(stripPrefix("/api/", "/api")).toBe("/");
    expect(stripPrefix("/api/users", "/api/")).toBe("/users");
  });

  test("does not strip inside a segment (W29: /api is not a prefix of /apifoo)", () => {
    expect(stripPrefix("/apifoo", "/api")).toBe("/apifoo");
  });

  test("treats '.' literally, unlike Otoroshi's regex replaceFirst", () => {
    expect(stripPrefix("/v1x2/users", "/v1.2")).toBe("/v1x2/users");
    expect(stripPrefix("/v1.2/users", "/v1.2")).toBe("/users");
  });

  test("prefix '/' or '' leaves the path unchanged", () => {
    expect(stripPrefix("/users", "/")).toBe("/users");
    expect(stripPrefix("/users", "")).toBe("/users");
  });
});

describe("targetOrigin and hostHeader", () => {
  test("elide only the scheme's default port (W31)", () => {
    expect(targetOrigin({ hostname: "h", port: 443, tls: true })).toBe("https://h");
    expect(targetOrigin({ hostname: "h", port: 80, tls: false })).toBe("http://h");
    expect(targetOrigin({ hostname: "h", port: 80, tls: true })).toBe("https://h:80");
    expect(targetOrigin({ hostname: "h", port: 443, tls: false })).toBe("http://h:443");
    expect(targetOrigin({ hostname: "h", port: 8080, tls: false })).toBe("http://h:8080");
  });

  test("Host carries a non-default port (RFC 9110 §7.2; W30 drops it)", () => {
    expect(hostHeader({ hostname: "api.example", port: 443, tls: true })).toBe("api.example");
    expect(hostHeader({ hostname: "api.example", port: 8443, tls: true })).toBe("api.example:8443");
    expect(hostHeader({ hostname: "api.example", port: 443, tls: false })).toBe("api.example:443");
  });

  test("bracket IPv6 literals (RFC 3986 §3.2.2)", () => {
    expect(targetOrigin({ hostname: "::1", port: 8080, tls: false })).toBe("http://[::1]:8080");
    expect(targetOrigin({ hostname: "[::1]", port: 80, tls: false })).toBe("http://[::1]");
    expect(hostHeader({ hostname: "2001:db8::1", port: 443, tls: true })).toBe("[2001:db8::1]");
  });
});
