// Property tests for request paths (issue 8, items 1 and 2): every spelling of a path that
// RFC 3986 calls equivalent (case of %xx, encoded unreserved characters, dot segments, repeated
// slashes, backslashes) is routed and forwarded as its canonical spelling. An open route and an
// Apikeys route on /admin share one backend; that backend is a bare socket, so what is compared
// is the request line it received, byte for byte.
//
// Bounded: numRuns and a time limit per property. Reproduce a failure with the seed and path
// fast-check prints (FUZZ_SEED=<seed> bun test tests/integration/path-canonical.test.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { canonicalPath, isPathProblem } from "../../src/router/path.ts";
import { type RawBackend, type RawSeen, startRawBackend } from "../helpers/echo-backend.ts";
import { basic, buildGateway, type TestGateway } from "../helpers/gateway.ts";

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const params = (numRuns: number) => ({ numRuns, interruptAfterTimeLimit: 10_000, markInterruptAsFailure: false, seed: SEED, endOnFailure: true });
const QUERY = "?q=//x/../y%2f&Z=%7e";
const APP = { id: "path-app", secret: "path-app-secret-0123" };

let be: RawBackend;
let gw: TestGateway;

beforeAll(async () => {
  be = await startRawBackend();
  gw = buildGateway(`
routes:
  - id: open
    frontend: { domains: [shared.test] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
  - id: admin
    frontend: { domains: [shared.test/admin] }
    backend: { targets: [{ hostname: 127.0.0.1, port: ${be.port} }] }
    plugins: [{ plugin: Apikeys }]
apikeys:
  - { clientId: ${APP.id}, clientSecret: ${APP.secret} }
`);
});
afterAll(async () => {
  gw?.close();
  await be?.stop();
});

// ------------------------------------------------------------------------------ generators

const UNRESERVED = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";

/** One character of a canonical segment, kept with how it may be spelled. */
type Atom = { kind: "unreserved"; ch: string } | { kind: "literal"; text: string } | { kind: "escape"; byte: number };
const atom: fc.Arbitrary<Atom> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...UNRESERVED).map((ch): Atom => ({ kind: "unreserved", ch })) },
  { weight: 2, arbitrary: fc.constantFrom(..."!$&'()*+,=:@").map((text): Atom => ({ kind: "literal", text })) },
  // Escapes of bytes that are not unreserved stay escapes: reserved, '%', controls, UTF-8.
  { weight: 2, arbitrary: fc.constantFrom(0x2f, 0x3f, 0x23, 0x25, 0x20, 0x22, 0x01, 0x7f, 0xc3, 0xa9, 0xff).map((byte): Atom => ({ kind: "escape", byte })) },
);
/** A canonical segment: never empty, never "." or "..". */
const segment = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("admin", "users", "pub", "x") },
  { weight: 4, arbitrary: fc.array(atom, { minLength: 1, maxLength: 6 }).filter((a) => !a.every((x) => x.kind === "unreserved" && x.ch === ".") || a.length > 2) },
);
const segments = fc.array(segment, { maxLength: 4 });
const base = fc.record({ first: fc.constantFrom("admin", "pub", null), rest: segments, trailing: fc.boolean() });

const hex = (byte: number, upper: boolean) => {
  const h = byte.toString(16).padStart(2, "0");
  return "%" + (upper ? h.toUpperCase() : h.toLowerCase());
};
const canonicalText = (s: string | Atom[]) => typeof s === "string" ? s : s.map((a) => (a.kind === "unreserved" ? a.ch : a.kind === "literal" ? a.text : hex(a.byte, true))).join("");

/** Random choices the spelling of one path consumes, one draw per decision. */
const choices = fc.array(fc.nat(99), { minLength: 64, maxLength: 64 });

function respell(segs: (string | Atom[])[], trailing: boolean, draws: number[]): string {
  let k = 0;
  const next = () => draws[k++ % draws.length];
  const dot = () => (next() < 50 ? "." : next() < 50 ? "%2e" : "%2E");
  const spellChar = (ch: string) => (next() < 30 ? hex(ch.charCodeAt(0), next() < 50) : ch);
  const sep = () => {
    const n = next();
    return n < 55 ? "/" : n < 75 ? "//" : n < 85 ? "///" : "\\";
  };
  // Equivalent to nothing when it follows a separator: "./" or "<junk>/../" (single slashes only:
  // under RFC 3986 §5.2.4 an empty segment counts, so "j//../" is not "").
  const noise = () => {
    const n = next();
    if (n < 60) return "";
    if (n < 80) return dot() + "/";
    return `${spellChar("j")}${spellChar("u")}/${dot()}${dot()}/`;
  };
  let out = "";
  for (const s of segs) {
    // A request target starts with '/' (RFC 9112 §3.2.1); a backslash can only follow it.
    out += (out === "" ? "/" + sep().replace(/^[/\\]/, "") : sep()) + noise();
    if (typeof s === "string") out += [...s].map(spellChar).join("");
    else out += s.map((a) => (a.kind === "unreserved" ? spellChar(a.ch) : a.kind === "literal" ? a.text : hex(a.byte, next() < 50))).join("");
  }
  if (segs.length === 0) out = "/" + sep().replace(/^[/\\]/, "");
  else if (trailing) out += sep();
  return out;
}

// ------------------------------------------------------------------------------ helpers

interface Outcome {
  status: number;
  backend: string | null;
}

async function send(path: string, withKey: boolean): Promise<Outcome> {
  const before = be.seen.length;
  const res = await gw.call(`http://shared.test${path}${QUERY}`, withKey ? { headers: { authorization: basic(APP.id, APP.secret) } } : undefined);
  const text = await res.text();
  let backend: string | null = null;
  if (res.status === 200) {
    backend = (JSON.parse(text) as RawSeen).line;
    expect(be.seen.length).toBe(before + 1);
  }
  return { status: res.status, backend };
}

const underAdmin = (p: string) => p === "/admin" || p.startsWith("/admin/");

// ------------------------------------------------------------------------------ properties

describe("every spelling of a path is routed and forwarded as its canonical spelling", () => {
  test("generated bases are canonical, and every respelling canonicalises to its base", () => {
    fc.assert(
      fc.property(base, choices, ({ first, rest, trailing }, draws) => {
        const segs = first === null ? rest : [first, ...rest];
        const canonical = segs.length === 0 ? "/" : "/" + segs.map(canonicalText).join("/") + (trailing ? "/" : "");
        expect(canonicalPath(canonical)).toBe(canonical);
        expect(canonicalPath(respell(segs, trailing, draws))).toBe(canonical);
      }),
      params(3000),
    );
  });

  test("the WHATWG URL parser (which Bun applies before the gateway) never changes the canonical form", () => {
    // Deno hands the gateway the raw target, Bun the parsed one: both must end up the same.
    const piece = fc.oneof(
      fc.constantFrom("", ".", "..", "%2e", "%2E%2e", ".%2e", "a", "admin", "%61", "%2f", "%2F", "%5c", "\\", "%zz", "%", "%00", "é", "a b", '"', "<>", "|^", "[x]", "~", "%7E", ";x", "😀"),
      fc.string({ unit: fc.constantFrom(..."ab.%2eEF/\\;:@!~-_"), maxLength: 8 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
        const raw = "/" + pieces.join("/");
        const parsed = new URL(`http://h${raw}`).pathname;
        const a = canonicalPath(raw);
        const b = canonicalPath(parsed);
        expect(isPathProblem(b) ? b.problem : b).toBe(isPathProblem(a) ? a.problem : a);
      }),
      params(3000),
    );
  });

  test("route chosen and request line sent are those of the canonical spelling", async () => {
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(base, choices, fc.boolean(), async ({ first, rest, trailing }, draws, withKey) => {
        const segs = first === null ? rest : [first, ...rest];
        const canonical = segs.length === 0 ? "/" : "/" + segs.map(canonicalText).join("/") + (trailing ? "/" : "");
        const spelling = respell(segs, trailing, draws);
        const want = await send(canonical, withKey);
        const got = await send(spelling, withKey);
        expect(got).toEqual(want);
        // And what the canonical spelling gets is right: the Apikeys route guards /admin.
        if (underAdmin(canonical) && !withKey) expect(want.status).toBe(401);
        if (want.status === 200) {
          const forwarded = underAdmin(canonical) ? canonical.slice("/admin".length) || "/" : canonical;
          expect(want.backend).toBe(`GET ${forwarded}${QUERY} HTTP/1.1`);
        } else expect([400, 401]).toContain(want.status);
        runs++;
      }),
      params(400),
    );
    expect(runs).toBeGreaterThan(50);
  }, 30_000);
});

describe("the spellings from issue 8", () => {
  test("no spelling of /admin reaches the backend without a key; with one, the backend gets the canonical path", async () => {
    for (const p of ["//admin/users", "///admin/x", "/pub/..//admin", "/pub/../admin/x", "/%61dmin/users", "/adm%69n/x", "/%61%64%6D%69%6E", "/%2e%2e/admin", "/\\admin/users", "/pub/.%2E/admin"]) {
      const res = await gw.call(`http://shared.test${p}`);
      expect({ p, status: res.status }).toEqual({ p, status: 401 });
    }
    const before = be.seen.length;
    expect(await send("//admin//users", true)).toEqual({ status: 200, backend: `GET /users${QUERY} HTTP/1.1` });
    expect(await send("/%61dmin/%7eme/./x/..", true)).toEqual({ status: 200, backend: `GET /~me/${QUERY} HTTP/1.1` });
    expect(be.seen.length).toBe(before + 2);
  });

  test("on the open route the backend gets the canonical path and the query byte for byte", async () => {
    expect(await send("//pub//a/./b/%7e/%c3%a9/x%2fy", false)).toEqual({ status: 200, backend: `GET /pub/a/b/~/%C3%A9/x%2Fy${QUERY} HTTP/1.1` });
  });

  test("paths with no canonical form get 400 in the Otoroshi shape, and no backend call", async () => {
    const before = be.seen.length;
    for (
      const [p, msg] of [
        ["/a/%zz", "Invalid request path: malformed percent-encoding"],
        ["/admin%", "Invalid request path: malformed percent-encoding"],
        ["/a%00b", "Invalid request path: NUL byte"],
        ["/pub/..;/admin/users", "Ambiguous request path: an encoded '/' or '\\' or a ';' hides a dot segment"],
        ["/pub%2F..%2Fadmin", "Ambiguous request path: an encoded '/' or '\\' or a ';' hides a dot segment"],
        ["/admin;x/users", "Ambiguous request path: a backend that reads ';' or an encoded '/' or '\\' as a separator would route it elsewhere"],
        ["/admin%2Fusers", "Ambiguous request path: a backend that reads ';' or an encoded '/' or '\\' as a separator would route it elsewhere"],
      ] as const
    ) {
      const res = await gw.call(`http://shared.test${p}`);
      expect({ p, status: res.status, err: res.headers.get("otoroshi-error"), body: await res.json() }).toEqual({ p, status: 400, err: "true", body: { "Otoroshi-Error": msg } });
    }
    expect(be.seen.length).toBe(before);
    // An encoded slash that no lenient reading moves to another route is data.
    expect(await send("/pub/a%2Fb;v=1", false)).toEqual({ status: 200, backend: `GET /pub/a%2Fb;v=1${QUERY} HTTP/1.1` });
  });
});
