import { describe, expect, test } from "bun:test";
import { domainKey, parseDomain } from "../../../src/router/domain.ts";
import { Router } from "../../../src/router/router.ts";

const spec = (d: string) => {
  const r = parseDomain(d);
  if (!r.ok) throw new Error(r.message);
  return r.spec;
};
const refusal = (d: string) => {
  const r = parseDomain(d);
  return r.ok ? null : r.message;
};

describe("frontend domain paths are canonical, as request paths are", () => {
  test("encoded unreserved characters, dot segments, repeated and trailing slashes", () => {
    expect(spec("api.test/%61dmin").path).toBe("/admin");
    expect(spec("api.test//admin//").path).toBe("/admin");
    expect(spec("api.test/pub/../admin/./x").path).toBe("/admin/x");
    expect(spec("api.test/%c3%a9").path).toBe("/%C3%A9");
    expect(spec("api.test/é").path).toBe("/%C3%A9");
    expect(spec("api.test/..").path).toBe("/");
    expect(spec("api.test").path).toBe("/");
  });

  test("two spellings of one prefix are one domain key (so `check` reports the duplicate)", () => {
    expect(domainKey(spec("api.test/%61dmin"))).toBe(domainKey(spec("API.test/admin/")));
  });

  test("a prefix the gateway could never serve unambiguously is refused, without quoting it", () => {
    for (const d of ["api.test/a%2Fb", "api.test/a%5cb", "api.test/a;b"]) {
      expect(refusal(d)).toBe("the path of a domain may not contain ';' or an encoded '/' or '\\' (backends read them as separators)");
    }
    expect(refusal("api.test/%zz")).toBe("the path of a domain is invalid: malformed percent-encoding");
    expect(refusal("api.test/a%00")).toBe("the path of a domain is invalid: NUL byte");
  });

  test("no refusal quotes the domain it refuses", () => {
    for (const d of ["http://secret-host.test", "secret-host.test:8080", "secret host", "secret-host.test/a?b", "secret-host.test/%zz", "secret-host.test/a;b"]) {
      const message = refusal(d);
      expect(message).not.toBeNull();
      expect(message!).not.toContain("secret");
    }
  });

  test("the router matches a request path against the canonical prefix", () => {
    const router = new Router([
      { route: "open", domains: ["shared.test"] },
      { route: "admin", domains: ["shared.test/%61dmin"] },
    ]);
    expect(router.match("shared.test", "/admin/users", "GET")).toEqual({ kind: "route", route: "admin", prefix: "/admin" });
    expect(router.match("shared.test", "/adminx", "GET")).toEqual({ kind: "route", route: "open", prefix: "/" });
    // The asterisk form (OPTIONS *) is no path: no route, not even "/".
    expect(router.match("shared.test", "*", "OPTIONS")).toBeNull();
  });
});
