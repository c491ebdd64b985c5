import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { GatewayError } from "../../../src/errors.ts";
import { assertedHeaderSet, backendRequestHeaders, clientResponseHeaders, declaredLength, type ForwardContext, parseContentLength } from "../../../src/proxy/headers.ts";

const untrusted: ForwardContext = { clientIp: "203.0.113.9", trusted: false, secure: false, host: "api.example:8080" };
const trusted: ForwardContext = { clientIp: "10.0.0.2", trusted: true, secure: true, host: "api.example" };

function pairs(h: Headers): [string, string][] {
  return [...h];
}

describe("backendRequestHeaders", () => {
  test("strips hop-by-hop fields and every field named in Connection (RFC 9110 §7.6.1, W32)", () => {
    const incoming = new Headers({
      connection: "keep-alive, X-Secret-Hop , x-other",
      "keep-alive": "timeout=5",
      "proxy-connection": "keep-alive",
      te: "trailers",
      trailer: "x-sum",
      "transfer-encoding": "chunked",
      upgrade: "websocket",
      "proxy-authorization": "Basic Zm9vOmJhcg==",
      "http2-settings": "AAMAAABkAARAAAAAAAIAAAAA",
      "x-secret-hop": "1",
      "x-other": "2",
      "x-kept": "3",
    });
    const out = backendRequestHeaders(incoming, untrusted, null, null);
    for (const name of ["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "proxy-authorization", "http2-settings", "x-secret-hop", "x-other"]) {
      expect(out.has(name)).toBe(false);
    }
    expect(out.get("x-kept")).toBe("3");
  });

  test("drops Host and Expect: forward() sets Host, the listener owns 100-continue", () => {
    const out = backendRequestHeaders(new Headers({ host: "api.example", expect: "100-continue" }), untrusted, null, null);
    expect(out.has("host")).toBe(false);
    expect(out.has("expect")).toBe(false);
  });

  test("keeps every value of repeated fields and the Cookie header as combined by the listener (W33)", () => {
    const incoming = new Headers();
    incoming.append("accept", "text/html");
    incoming.append("accept", "application/json");
    incoming.set("cookie", "a=1; b=2");
    const out = backendRequestHeaders(incoming, untrusted, null, null);
    expect(out.get("accept")).toBe("text/html, application/json");
    expect(out.get("cookie")).toBe("a=1; b=2");
  });

  test("an untrusted peer's forwarding headers are replaced, not believed (W34)", () => {
    const incoming = new Headers({
      "x-forwarded-for": "1.1.1.1",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "evil.example",
      "x-forwarded-prefix": "/admin",
      "x-forwarded-port": "443",
      "x-forwarded-server": "evil",
      "x-real-ip": "1.1.1.1",
      forwarded: "for=1.1.1.1;proto=https",
    });
    const out = backendRequestHeaders(incoming, untrusted, null, null);
    expect(out.get("x-forwarded-for")).toBe("203.0.113.9");
    expect(out.get("x-forwarded-proto")).toBe("http");
    expect(out.get("x-forwarded-host")).toBe("api.example:8080");
    for (const name of ["x-forwarded-prefix", "x-forwarded-port", "x-forwarded-server", "x-real-ip", "forwarded"]) {
      expect(out.has(name)).toBe(false);
    }
  });

  test("a trusted proxy's chain is extended and its other forwarding headers kept", () => {
    const incoming = new Headers({
      "x-forwarded-for": "198.51.100.7, 10.0.0.1",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "public.example",
      "x-forwarded-prefix": "/edge",
      forwarded: "for=198.51.100.7",
      "x-real-ip": "198.51.100.7",
    });
    const out = backendRequestHeaders(incoming, { ...trusted, secure: false }, null, null);
    expect(out.get("x-forwarded-for")).toBe("198.51.100.7, 10.0.0.1, 10.0.0.2");
    expect(out.get("x-forwarded-proto")).toBe("https");
    expect(out.get("x-forwarded-host")).toBe("public.example");
    expect(out.get("x-forwarded-prefix")).toBe("/edge");
    expect(out.get("forwarded")).toBe("for=198.51.100.7");
    expect(out.get("x-real-ip")).toBe("198.51.100.7");
  });

  test("a trusted peer without forwarding headers gets ours", () => {
    const out = backendRequestHeaders(new Headers(), trusted, null, null);
    expect(out.get("x-forwarded-for")).toBe("10.0.0.2");
    expect(out.get("x-forwarded-proto")).toBe("https");
    expect(out.get("x-forwarded-host")).toBe("api.example");
  });

  test("removes wiped credential headers and sets extra headers last", () => {
    const incoming = new Headers({ "otoroshi-client-id": "id", "otoroshi-client-secret": "s", "x-api-key": "k", "otoroshi-client-name": "spoofed" });
    const out = backendRequestHeaders(
      incoming,
      untrusted,
      new Set(["otoroshi-client-id", "otoroshi-client-secret", "x-api-key"]),
      [["Otoroshi-Client-Name", "real"]],
    );
    expect(out.has("otoroshi-client-id")).toBe(false);
    expect(out.has("otoroshi-client-secret")).toBe(false);
    expect(out.has("x-api-key")).toBe(false);
    expect(out.get("otoroshi-client-name")).toBe("real");
  });

  test("a client cannot hide the extra headers by naming them in Connection", () => {
    const out = backendRequestHeaders(new Headers({ connection: "otoroshi-client-name" }), untrusted, null, [["otoroshi-client-name", "real"]]);
    expect(out.get("otoroshi-client-name")).toBe("real");
  });

  test("accept-encoding: the client's is kept, identity when absent", () => {
    expect(backendRequestHeaders(new Headers({ "accept-encoding": "gzip, br" }), untrusted, null, null).get("accept-encoding")).toBe("gzip, br");
    expect(backendRequestHeaders(new Headers(), untrusted, null, null).get("accept-encoding")).toBe("identity");
  });

  test("user-agent: the client's is kept, empty when absent (fetch would invent one)", () => {
    expect(backendRequestHeaders(new Headers({ "user-agent": "curl/8" }), untrusted, null, null).get("user-agent")).toBe("curl/8");
    expect(backendRequestHeaders(new Headers(), untrusted, null, null).get("user-agent")).toBe("");
  });

  test("end-to-end fields pass through untouched", () => {
    const incoming = new Headers({ authorization: "Bearer t", "content-type": "application/json", "content-length": "12", "x-custom": "r1" });
    const out = backendRequestHeaders(incoming, untrusted, null, null);
    expect(out.get("authorization")).toBe("Bearer t");
    expect(out.get("content-type")).toBe("application/json");
    expect(out.get("content-length")).toBe("12");
    expect(out.get("x-custom")).toBe("r1");
  });

  test("the request id and trace context are the gateway's: every client spelling is dropped (the handler sets them)", () => {
    const incoming = new Headers({ "x-request-id": "r1", x_request_id: "r2", traceparent: "t", tracestate: "s" });
    const out = backendRequestHeaders(incoming, untrusted, null, null, assertedHeaderSet([]));
    for (const name of ["x-request-id", "x_request_id", "traceparent", "tracestate"]) expect(out.has(name)).toBe(false);
  });
});

describe("asserted headers (issue 8 items 5 and 6)", () => {
  const asserted = assertedHeaderSet(["Otoroshi-Authenticated-Client-Id", "X-Client", "X_Under"]);
  const fold = (n: string) => n.toLowerCase().replaceAll("_", "-");

  test("every spelling of an asserted name is dropped: dashes, underscores, mixes, any case", () => {
    const incoming = new Headers({
      "Otoroshi-Authenticated-Client-Id": "a",
      Otoroshi_Authenticated_Client_Id: "b",
      "Otoroshi_Authenticated-Client_Id": "c",
      "OTOROSHI-AUTHENTICATED_CLIENT-ID": "d",
      "x-client": "e",
      X_CLIENT: "f",
      "x-under": "g",
      x_under: "h",
      "x-kept": "1",
      x_kept_too: "2",
    });
    for (const ctx of [untrusted, trusted]) {
      const out = backendRequestHeaders(incoming, ctx, null, null, asserted);
      expect([...out.keys()].filter((k) => asserted.has(fold(k)))).toEqual([]);
      expect(out.get("x-kept")).toBe("1");
      expect(out.get("x_kept_too")).toBe("2");
    }
  });

  test("the default set covers Otoroshi-Authenticated-Client-Id when a caller passes none", () => {
    const out = backendRequestHeaders(new Headers({ Otoroshi_Authenticated_Client_Id: "admin" }), trusted, null, null);
    expect(out.has("otoroshi_authenticated_client_id")).toBe(false);
  });

  test("the value the gateway sets is the only one the backend gets", () => {
    const incoming = new Headers({ "x-client": "admin", x_client: "admin" });
    const out = backendRequestHeaders(incoming, untrusted, null, [["x-client", "real-id"]], asserted);
    expect([...out].filter(([k]) => fold(k) === "x-client")).toEqual([["x-client", "real-id"]]);
  });

  test("underscore spellings of forwarding fields are dropped even from a trusted proxy", () => {
    const incoming = new Headers({ "x-forwarded-for": "198.51.100.7", X_Forwarded_For: "1.2.3.4", "x_forwarded-host": "evil", x_real_ip: "1.2.3.4", "x-real-ip": "198.51.100.7" });
    const out = backendRequestHeaders(incoming, trusted, null, null, asserted);
    expect(out.get("x-forwarded-for")).toBe("198.51.100.7, 10.0.0.2");
    expect(out.get("x-real-ip")).toBe("198.51.100.7");
    for (const n of ["x_forwarded_for", "x_forwarded-host", "x_real_ip"]) expect(out.has(n)).toBe(false);
    const fromClient = backendRequestHeaders(incoming, untrusted, null, null, asserted);
    expect([...fromClient.keys()].filter((k) => k.includes("_"))).toEqual([]);
  });

  test("property: no spelling of an asserted name reaches the backend, nothing else is dropped", () => {
    const names = ["otoroshi-authenticated-client-id", "x-client", "x-under"];
    const spelling = fc
      .tuple(fc.constantFrom(...names), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }))
      .map(([n, under, upper]) => [...n].map((c, i) => (c === "-" && under[i] ? "_" : upper[i] ? c.toUpperCase() : c)).join(""));
    const dropped = [
      "connection",
      "keep-alive",
      "proxy-connection",
      "te",
      "trailer",
      "transfer-encoding",
      "upgrade",
      "proxy-authorization",
      "proxy-authenticate",
      "http2-settings",
      "host",
      "expect",
      "forwarded",
      "x-real-ip",
    ];
    const other = fc.stringMatching(/^[a-z][a-z0-9_-]{0,20}$/).filter((n) => !names.includes(fold(n)) && !fold(n).startsWith("x-forwarded-") && !dropped.includes(fold(n)));
    fc.assert(
      fc.property(fc.array(spelling, { maxLength: 6 }), fc.uniqueArray(other, { maxLength: 6 }), fc.boolean(), (spoofs, kept, isTrusted) => {
        const incoming = new Headers();
        for (const n of spoofs) incoming.append(n, "admin");
        for (const n of kept) incoming.append(n, "v");
        const out = backendRequestHeaders(incoming, isTrusted ? trusted : untrusted, null, null, asserted);
        for (const k of out.keys()) expect(asserted.has(fold(k))).toBe(false);
        for (const n of kept) expect(out.get(n)).toBe("v");
      }),
      { numRuns: 500 },
    );
  });
});

describe("declaredLength (RFC 9112 §6.3)", () => {
  const h = (init: Record<string, string>) => new Headers(init);
  const status = (f: () => unknown) => {
    try {
      f();
      return 0;
    } catch (e) {
      return e instanceof GatewayError ? e.status : -1;
    }
  };

  test("one value, or a list of one repeated decimal value, is that length", () => {
    expect(declaredLength(h({}))).toBe(null);
    expect(declaredLength(h({ "content-length": "5" }))).toBe(5);
    expect(declaredLength(h({ "content-length": "5, 5" }))).toBe(5);
    expect(declaredLength(h({ "content-length": "5,5, 5" }))).toBe(5);
    expect(declaredLength(h({ "content-length": "5, 05" }))).toBe(5);
    expect(declaredLength(h({ "content-length": "0, 0" }))).toBe(0);
    expect(declaredLength(h({ "transfer-encoding": "chunked" }))).toBe(null);
    expect(declaredLength(h({ "transfer-encoding": " Chunked " }))).toBe(null);
  });

  test("differing, signed, empty, non-decimal or oversized lengths are a 400, never a guess", () => {
    for (const v of ["5, 6", "5, ", ",5", "+5", "-1", "0x5", "5a", "1e3", "5.0", "9999999999999999", "5, 5, 6"]) {
      expect([v, status(() => declaredLength(h({ "content-length": v })))]).toEqual([v, 400]);
    }
    expect(parseContentLength("5, 6")).toBe(null);
  });

  test("Transfer-Encoding: only chunked, and never together with Content-Length", () => {
    expect(status(() => declaredLength(h({ "transfer-encoding": "gzip, chunked" })))).toBe(400);
    expect(status(() => declaredLength(h({ "transfer-encoding": "deflate,chunked" })))).toBe(400);
    expect(status(() => declaredLength(h({ "transfer-encoding": "chunked", "content-length": "5" })))).toBe(400);
  });
});

describe("clientResponseHeaders", () => {
  test("strips hop-by-hop fields and those the backend's Connection names", () => {
    const upstream = new Headers({
      connection: "x-secret-hop",
      "x-secret-hop": "1",
      "keep-alive": "timeout=5",
      "transfer-encoding": "chunked",
      "proxy-authenticate": 'Basic realm="x"',
      upgrade: "h2c",
      trailer: "x-sum",
      "x-end-to-end": "kept",
    });
    expect(pairs(clientResponseHeaders(upstream))).toEqual([["x-end-to-end", "kept"]]);
  });

  test("keeps each Set-Cookie as its own line, including Expires commas", () => {
    const upstream = new Headers();
    upstream.append("set-cookie", "a=1; Path=/");
    upstream.append("set-cookie", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT");
    const out = clientResponseHeaders(upstream);
    expect(out.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT"]);
  });

  test("keeps every value of multi-valued fields (W33 keeps only the last)", () => {
    const upstream = new Headers();
    upstream.append("vary", "accept-encoding");
    upstream.append("vary", "origin");
    upstream.append("www-authenticate", 'Bearer realm="a"');
    upstream.append("www-authenticate", 'Basic realm="b"');
    const out = clientResponseHeaders(upstream);
    expect(out.get("vary")).toBe("accept-encoding, origin");
    expect(out.get("www-authenticate")).toBe('Bearer realm="a", Basic realm="b"');
  });

  test("keeps content-encoding and content-length as the backend sent them", () => {
    const out = clientResponseHeaders(new Headers({ "content-encoding": "gzip", "content-length": "74", "content-type": "text/plain" }));
    expect(out.get("content-encoding")).toBe("gzip");
    expect(out.get("content-length")).toBe("74");
    expect(out.get("content-type")).toBe("text/plain");
  });
});
