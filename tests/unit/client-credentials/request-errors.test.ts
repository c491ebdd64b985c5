import { describe, expect, test } from "bun:test";
import { setLogSink } from "../../../src/log.ts";
import { build, expectError, form, HOST, json, send, TOKEN_URL } from "./harness.ts";

const { svc } = build();
const GRANT = { grant_type: "client_credentials" };

describe("token endpoint: request errors", () => {
  test("refuses a missing grant_type with invalid_request", async () => {
    await expectError(await send(svc, form(TOKEN_URL, { client_id: "my-id", client_secret: "my-secret" })), 400, "invalid_request", "missing grant_type");
  });

  test("refuses other grant types with unsupported_grant_type", async () => {
    for (const grant_type of ["password", "authorization_code", "Client_Credentials"]) {
      const res = await send(svc, form(TOKEN_URL, { grant_type, client_id: "my-id", client_secret: "my-secret" }));
      await expectError(res, 400, "unsupported_grant_type");
    }
  });

  test("refuses a repeated parameter (RFC 6749 §3.1)", async () => {
    const res = await send(svc, form(TOKEN_URL, "grant_type=client_credentials&client_id=my-id&client_secret=my-secret&client_id=my-id"));
    await expectError(res, 400, "invalid_request", "parameter 'client_id' is repeated");
  });

  // Issue 8 item 13: what a listener lets through (Deno passes "gzip, chunked" on) is checked here
  // too, in this endpoint's error shape.
  test("framing: a repeated Content-Length is its value; differing lengths and other codings get 400", async () => {
    const body = "grant_type=client_credentials&client_id=my-id&client_secret=my-secret";
    const with_ = (headers: Record<string, string>) => new Request(TOKEN_URL, { method: "POST", headers: { host: HOST, "content-type": "application/x-www-form-urlencoded", ...headers }, body });
    const n = String(body.length);
    expect((await send(svc, with_({ "content-length": `${n}, ${n}` }))).status).toBe(200);
    await expectError(await send(svc, with_({ "content-length": `${n}, 1` })), 400, "invalid_request", "invalid Content-Length");
    await expectError(await send(svc, with_({ "content-length": "+1" })), 400, "invalid_request", "invalid Content-Length");
    await expectError(await send(svc, with_({ "transfer-encoding": "gzip, chunked" })), 400, "invalid_request", "unsupported Transfer-Encoding");
  });

  test("refuses malformed form bodies: bad escapes and invalid UTF-8", async () => {
    for (const body of ["grant_type=client_credentials&client_id=%zz", "grant_type=client_credentials&client_id=%FF", "grant_type=%"]) {
      await expectError(await send(svc, form(TOKEN_URL, body)), 400, "invalid_request");
    }
    const raw = new Request(TOKEN_URL, { method: "POST", headers: { host: HOST, "content-type": "application/x-www-form-urlencoded" }, body: new Uint8Array([0x61, 0x3d, 0xff]) });
    await expectError(await send(svc, raw), 400, "invalid_request", "request body is not valid UTF-8");
  });

  test("refuses malformed JSON, a non-object and non-string members", async () => {
    const bodies = ["{", "", "[]", '"x"', "null", JSON.stringify({ ...GRANT, client_id: "my-id", client_secret: 42 }), JSON.stringify({ ...GRANT, client_id: ["my-id"], client_secret: "my-secret" })];
    for (const body of bodies) await expectError(await send(svc, json(TOKEN_URL, body)), 400, "invalid_request");
  });

  test("treats a null JSON member as absent", async () => {
    const res = await send(svc, json(TOKEN_URL, { ...GRANT, client_id: "my-id", client_secret: "my-secret", scope: null }));
    expect(res.status).toBe(200);
  });

  test("refuses other content types and a missing one with invalid_request", async () => {
    for (const type of ["text/plain", "multipart/form-data; boundary=x", "application/jsonx", ""]) {
      const req = new Request(TOKEN_URL, { method: "POST", headers: type ? { host: HOST, "content-type": type } : { host: HOST }, body: "grant_type=client_credentials" });
      if (!type) req.headers.delete("content-type");
      await expectError(await send(svc, req), 400, "invalid_request");
    }
  });

  test("refuses a body over maxBodySize with 413, by Content-Length or by counting the stream", async () => {
    const { svc: s } = build({ config: { maxBodySize: 256 } });
    const big = "grant_type=client_credentials&pad=" + "x".repeat(300);
    await expectError(await send(s, form(TOKEN_URL, big)), 413, "invalid_request", "request body too large");
    const chunks = [new TextEncoder().encode("grant_type=client_credentials&pad="), new TextEncoder().encode("y".repeat(300))];
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        const next = chunks.shift();
        if (next) c.enqueue(next);
        else c.close();
      },
    });
    const req = new Request(TOKEN_URL, { method: "POST", headers: { host: HOST, "content-type": "application/x-www-form-urlencoded" }, body: stream, duplex: "half" } as RequestInit);
    expect(req.headers.get("content-length")).toBeNull();
    await expectError(await send(s, req), 413, "invalid_request", "request body too large");
    // Right at the limit is fine, with or without Content-Length.
    const exact = "grant_type=client_credentials&client_id=my-id&client_secret=my-secret&pad=";
    const atLimit = exact + "z".repeat(256 - exact.length);
    expect((await send(s, form(TOKEN_URL, atLimit))).status).toBe(200);
    expect((await send(s, form(TOKEN_URL, atLimit, { "content-length": "256" }))).status).toBe(200);
  });

  test("does not trust a Content-Length smaller than the body", async () => {
    const { svc: s } = build({ config: { maxBodySize: 256 } });
    const lying = form(TOKEN_URL, "grant_type=client_credentials&pad=" + "x".repeat(300), { "content-length": "10" });
    await expectError(await send(s, lying), 413, "invalid_request", "request body too large");
  });

  test("fails closed with 500 server_error when a key's signing key pair is missing, never an HMAC", async () => {
    const { svc: s } = build({ clients: [{ clientId: "lost", clientSecret: "s3cret", metadata: { "jwt-sign-keypair": "k-missing" } }] });
    const lines: string[] = [];
    setLogSink((line) => void lines.push(line));
    try {
      const res = await send(s, form(TOKEN_URL, { ...GRANT, client_id: "lost", client_secret: "s3cret" }), { requestId: "req-lost-1" });
      await expectError(res, 500, "server_error");
    } finally {
      setLogSink((line) => void process.stderr.write(line + "\n"));
    }
    expect(lines.length).toBe(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "error", event: "oauth.signing_key_missing", requestId: "req-lost-1", keyPair: "k-missing" });
    expect(lines[0]).not.toContain("s3cret");
  });

  test("refuses a Host header that cannot make an issuer", async () => {
    const req = new Request(TOKEN_URL, {
      method: "POST",
      headers: { host: "oauth.oto.tools:8080/evil", "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&client_id=my-id&client_secret=my-secret",
    });
    const { svc: any } = build({ config: { domain: "*" } });
    await expectError(await send(any, req), 400, "invalid_request", "invalid Host header");
  });
});
