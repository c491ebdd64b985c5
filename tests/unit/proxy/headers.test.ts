import { describe, expect, test } from "bun:test";
import { backendRequestHeaders, clientResponseHeaders, type ForwardContext } from "../../../src/proxy/headers.ts";

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
    const incoming = new Headers({ authorization: "Bearer t", "content-type": "application/json", "content-length": "12", "x-request-id": "r1" });
    const out = backendRequestHeaders(incoming, untrusted, null, null);
    expect(out.get("authorization")).toBe("Bearer t");
    expect(out.get("content-type")).toBe("application/json");
    expect(out.get("content-length")).toBe("12");
    expect(out.get("x-request-id")).toBe("r1");
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
