import { describe, expect, test } from "bun:test";
import { canonicalPath, isPathProblem, lenientReading } from "../../../src/router/path.ts";

const canon = (p: string) => {
  const c = canonicalPath(p);
  return isPathProblem(c) ? `400: ${c.problem}` : c;
};

describe("canonicalPath", () => {
  test("an already canonical path is returned as it is (the same string)", () => {
    for (const p of ["/", "/a", "/a/b/", "/admin/users", "/a.b/..c/c../.x/x.", "/~user/a-b_c.d", "/!$&'()*+,;=:@", "/%2F", "/a%2Fb%20c", "/..a", "/a/...", "/.../x"]) {
      expect(canonicalPath(p)).toBe(p);
    }
  });

  test("repeated slashes are merged, leading and inner and trailing (nginx and Envoy merge_slashes)", () => {
    expect(canon("//admin/users")).toBe("/admin/users");
    expect(canon("///admin/x")).toBe("/admin/x");
    expect(canon("/a//b///c")).toBe("/a/b/c");
    expect(canon("/a/b//")).toBe("/a/b/");
    expect(canon("//")).toBe("/");
  });

  test("dot segments are removed (RFC 3986 §5.2.4), an empty segment counting as one as in WHATWG URL", () => {
    expect(canon("/a/../b")).toBe("/b");
    expect(canon("/a/./b")).toBe("/a/b");
    expect(canon("/a/b/.")).toBe("/a/b/");
    expect(canon("/a/b/..")).toBe("/a/");
    expect(canon("/pub/..//admin")).toBe("/admin");
    expect(canon("/a//../b")).toBe("/a/b");
    expect(canon("/a/b/../../../c")).toBe("/c");
  });

  test("a '..' above the root stays at the root (RFC 3986 §5.4.2, as Bun's URL parser does first)", () => {
    expect(canon("/..")).toBe("/");
    expect(canon("/../x")).toBe("/x");
    expect(canon("/../../admin")).toBe("/admin");
  });

  test("percent-encoded unreserved characters are decoded (RFC 3986 §6.2.2.2), so encoded dots are dots", () => {
    expect(canon("/%61dmin/users")).toBe("/admin/users");
    expect(canon("/adm%69n/x")).toBe("/admin/x");
    expect(canon("/%61%64%6d%69%6e")).toBe("/admin");
    expect(canon("/%41%5a%30%39%2d%2E%5f%7E")).toBe("/AZ09-._~");
    expect(canon("/%2e%2e/x")).toBe("/x");
    expect(canon("/a/%2E%2e/b")).toBe("/b");
    expect(canon("/a/.%2e/b")).toBe("/b");
    expect(canon("/a/%2e/b")).toBe("/a/b");
  });

  test("every other escape stays encoded with upper-case hex (RFC 3986 §6.2.2.1): %2F is data", () => {
    expect(canon("/a%2fb")).toBe("/a%2Fb");
    expect(canon("/a%2Fb")).toBe("/a%2Fb");
    expect(canon("/%c3%a9")).toBe("/%C3%A9");
    expect(canon("/a%3bb%3F%23")).toBe("/a%3Bb%3F%23");
    expect(canon("/x%5c..%5cy")).toBe("/x%5C..%5Cy");
    expect(canon("/%2e%2e%2fadmin")).toBe("/..%2Fadmin");
    expect(canon("/a%7fb%1F")).toBe("/a%7Fb%1F");
  });

  test("bytes RFC 3986 does not allow in a path are percent-encoded as UTF-8 (as Bun's parser does)", () => {
    expect(canon("/é")).toBe("/%C3%A9");
    expect(canon('/a"b<c>`{}')).toBe("/a%22b%3Cc%3E%60%7B%7D");
    expect(canon("/a|b^c[d]")).toBe("/a%7Cb%5Ec%5Bd%5D");
    expect(canon("/a b")).toBe("/a%20b");
    expect(canon("/😀")).toBe("/%F0%9F%98%80");
    expect(canon("/\ud800x")).toBe("/%EF%BF%BDx");
  });

  test("a backslash is a '/' (WHATWG URL, which Bun applies before the gateway sees the path)", () => {
    expect(canon("/a\\b")).toBe("/a/b");
    expect(canon("/\\admin")).toBe("/admin");
    expect(canon("/pub\\..\\admin")).toBe("/admin");
  });

  test("malformed escapes, NUL and relative paths get a problem that never quotes the path", () => {
    for (const p of ["/%zz", "/a%", "/a%4", "/%g1", "/a%%41", "/%"]) expect(canon(p)).toBe("400: Invalid request path: malformed percent-encoding");
    expect(canon("/a%00b")).toBe("400: Invalid request path: NUL byte");
    expect(canon("/a\0b")).toBe("400: Invalid request path: NUL byte");
    expect(canon("a/b")).toBe("400: Invalid request path: it must start with '/'");
    expect(canon("")).toBe("400: Invalid request path: it must start with '/'");
    expect(canon("*")).toBe("*");
  });

  test("a bad escape in a segment that a '..' removes is gone, as it is after Bun's URL parser", () => {
    expect(canon("/a%zz/../b")).toBe("/b");
    expect(canon("/a%00/../b")).toBe("/b");
    expect(canon("/a%zz/./b")).toBe("400: Invalid request path: malformed percent-encoding");
  });

  test("idempotent: the canonical form of a canonical form is itself", () => {
    for (const p of ["//a/./b/../%61%2f", "/%c3%a9/\\x/..", "/a/b//", "/.%2E/%7e"]) {
      const once = canonicalPath(p) as string;
      expect(canonicalPath(once)).toBe(once);
    }
  });
});

describe("lenientReading", () => {
  test("null when nothing in the path reads differently", () => {
    expect(lenientReading("/admin/users")).toBeNull();
    expect(lenientReading("/a%20b/%C3%A9")).toBeNull();
  });

  test("encoded slashes and backslashes become separators, ';' parameters are dropped", () => {
    expect(lenientReading("/admin%2Fusers")).toBe("/admin/users");
    expect(lenientReading("/a%5Cb")).toBe("/a/b");
    expect(lenientReading("/admin;jsessionid=1/users")).toBe("/admin/users");
    expect(lenientReading("/a;x")).toBe("/a");
  });

  test("a dot segment hidden behind an encoded slash or a ';' is a problem", () => {
    for (const p of ["/pub/..;/admin", "/pub%2F..%2Fadmin", "/x/.;/y", "/a%5C..%5Cb", "/..;x"]) {
      const r = lenientReading(p);
      expect(r !== null && typeof r !== "string" ? r.problem : r).toBe("Ambiguous request path: an encoded '/' or '\\' or a ';' hides a dot segment");
    }
  });
});
