// Standard clients against the service, unchanged: jose verifies our tokens from our JWKS, and
// oauth4webapi discovers, gets tokens and introspects over real HTTP.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from "jose";
import * as oauth from "oauth4webapi";
import { compileAddressMatcher } from "../../../src/net/cidr.ts";
import { createContext } from "../../../src/request.ts";
import { ALGS, basic, build, CLIENTS, form, get, INTROSPECT_URL, JWKS_URL, NOW, send, TOKEN_URL, tokenFor } from "./harness.ts";

describe("jose", () => {
  const { svc } = build();

  for (const alg of ALGS) {
    test(`createLocalJWKSet + jwtVerify verify an ${alg} token from the JWKS endpoint`, async () => {
      const jwks = createLocalJWKSet(await (await send(svc, get(JWKS_URL))).json());
      const token = await tokenFor(svc, `c-${alg.toLowerCase()}`, "s3cret");
      const { payload, protectedHeader } = await jwtVerify(token, jwks, {
        issuer: "http://oauth.oto.tools:8080",
        audience: "otoroshi",
        typ: "at+jwt",
        algorithms: [alg],
        currentDate: new Date(NOW),
      });
      expect(protectedHeader.kid).toBe(`k-${alg.toLowerCase()}`);
      expect(payload.client_id).toBe(`c-${alg.toLowerCase()}`);
    });
  }
});

describe("over HTTP", () => {
  // issuer unset, domain "*", secure false: the issuer is http://127.0.0.1:<port>.
  const { svc } = build({ config: { domain: "*", secure: false }, scopes: ["read", "write"] });
  const noTrust = compileAddressMatcher([]);
  let server: ReturnType<typeof Bun.serve>;
  let issuer: URL;

  beforeAll(() => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req, srv) {
        const ctx = createContext(req, { remoteAddress: srv.requestIP(req)?.address ?? "127.0.0.1", secure: false }, noTrust, Date.now());
        return svc.matches(ctx) ? svc.handle(ctx) : new Response("no route", { status: 404 });
      },
    });
    issuer = new URL(`http://127.0.0.1:${server.port}`);
  });
  afterAll(() => server.stop(true));

  const insecure = { [oauth.allowInsecureRequests]: true } as const;
  const discover = async () => oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: "oauth2", ...insecure }));

  test("oauth4webapi discovers the server through RFC 8414 metadata", async () => {
    const as = await discover();
    expect(new URL(as.issuer).href).toBe(issuer.href);
    expect(as.token_endpoint).toBe(`${issuer.origin}/.well-known/otoroshi/oauth/token`);
    expect(as.scopes_supported).toEqual(["read", "write"]);
  });

  const odd = CLIENTS.find((c) => c.clientId === "odd")!.clientSecret;
  const methods: [string, (secret: string) => oauth.ClientAuth][] = [
    ["client_secret_basic", oauth.ClientSecretBasic],
    ["client_secret_post", oauth.ClientSecretPost],
  ];
  for (const [name, auth] of methods) {
    test(`oauth4webapi gets a token with ${name}, a secret with + % : in it, and introspects it`, async () => {
      const as = await discover();
      const client: oauth.Client = { client_id: "odd" };
      const res = await oauth.clientCredentialsGrantRequest(as, client, auth(odd), new URLSearchParams(), insecure);
      const tokens = await oauth.processClientCredentialsResponse(as, client, res);
      expect(tokens.token_type).toBe("bearer");
      expect(tokens.expires_in).toBe(3600);

      const rs: oauth.Client = { client_id: "my-id" };
      const ires = await oauth.introspectionRequest(as, rs, auth("my-secret"), tokens.access_token, insecure);
      const info = await oauth.processIntrospectionResponse(as, rs, ires);
      expect(info).toMatchObject({ active: true, client_id: "odd", sub: "odd", iss: issuer.origin, token_type: "Bearer" });

      const bad = await oauth.introspectionRequest(as, rs, auth("my-secret"), tokens.access_token + "x", insecure);
      expect(await oauth.processIntrospectionResponse(as, rs, bad)).toEqual({ active: false });
    });
  }

  test("oauth4webapi reports a refused client as an OAuth error", async () => {
    const as = await discover();
    const client: oauth.Client = { client_id: "my-id" };
    const res = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretPost("wrong"), new URLSearchParams(), insecure);
    const err = await oauth.processClientCredentialsResponse(as, client, res).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(oauth.ResponseBodyError);
    expect((err as oauth.ResponseBodyError).error).toBe("invalid_client");
  });

  test("jose's createRemoteJWKSet verifies a token against the JWKS URL", async () => {
    const as = await discover();
    const client: oauth.Client = { client_id: "my-id" };
    const res = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic("my-secret"), { scope: "read" }, insecure);
    const { access_token } = await oauth.processClientCredentialsResponse(as, client, res);
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
    const { payload } = await jwtVerify(access_token, jwks, { issuer: issuer.origin, audience: "otoroshi", typ: "at+jwt" });
    expect(payload).toMatchObject({ client_id: "my-id", scope: "read" });
  });
});

describe("robustness", () => {
  const { svc } = build();
  const contentTypes = ["application/json", "application/x-www-form-urlencoded", "APPLICATION/JSON; charset=latin1", "text/plain", "", "multipart/form-data", "application/x-www-form-urlencoded;;;"];
  const names = ["grant_type", "client_id", "client_secret", "scope", "token", "token_type_hint", "x"];
  const values = fc.oneof(fc.constantFrom("client_credentials", "my-id", "my-secret", "read", "", "%", "%FF", "+"), fc.string({ unit: "binary", maxLength: 20 }));
  const formBody = fc
    .array(fc.tuple(fc.constantFrom(...names), values, fc.boolean()), { maxLength: 6 })
    .map((pairs) => pairs.map(([k, v, encode]) => `${k}=${encode ? encodeURIComponent(v) : v}`).join("&"));
  const jsonBody = fc.oneof(fc.dictionary(fc.constantFrom(...names), fc.oneof(values, fc.jsonValue())).map((o) => JSON.stringify(o)), fc.json());
  const body = fc.oneof(formBody, jsonBody, fc.string({ unit: "binary", maxLength: 200 }), fc.uint8Array({ maxLength: 200 }));
  const authorization = fc.oneof(
    fc.constant(undefined),
    fc.tuple(fc.constantFrom("my-id", "odd", "nobody", "", "a:b"), values).map(([id, secret]) => basic(id, secret)),
    fc.string({ maxLength: 40 }).map((s) => `Basic ${s}`),
    fc.constantFrom("Bearer x", "basic", "Basic ====", "Basic " + btoa("my-id:my-secret")),
  );
  const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, "");

  test("never answers 5xx and always answers JSON with an error or a result", async () => {
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(TOKEN_URL, INTROSPECT_URL), fc.constantFrom(...contentTypes), body, authorization, async (url, type, b, auth) => {
        const headers: Record<string, string> = {};
        if (type) headers["content-type"] = type;
        if (auth !== undefined) headers.authorization = printable(auth);
        const req = form(url, "", headers);
        const res = await send(svc, new Request(req, { body: b, headers: { ...Object.fromEntries(req.headers), ...headers } }));
        seen.add(res.status);
        expect(res.status).toBeLessThan(500);
        expect(res.headers.get("content-type")).toBe("application/json");
        expect(res.headers.get("cache-control")).toBe("no-store");
        const out = (await res.json()) as Record<string, unknown>;
        if (res.status === 200) expect("access_token" in out || "active" in out).toBe(true);
        else expect(typeof out.error).toBe("string");
      }),
      { numRuns: 400 },
    );
    // The generators reach past the parser into authentication.
    expect(seen.has(400)).toBe(true);
    expect(seen.has(401)).toBe(true);
  });

  test("a form body from the property's alphabet can still succeed", async () => {
    const res = await send(svc, form(TOKEN_URL, "grant_type=client_credentials&client_id=my-id&client_secret=my-secret&x=%2B"));
    expect(res.status).toBe(200);
  });
});
