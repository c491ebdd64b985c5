// The seed tutorial, word for word, against the real gateway process and a local echo backend.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "bun";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { type EchoBackend, startEchoBackend } from "../helpers/echo-backend.ts";
import { recordSecret } from "../helpers/secrets.ts";
import { type GatewayProcess, ROOT, RUNTIME, startGateway } from "./process.ts";

let be: EchoBackend;
let gw: GatewayProcess;

beforeAll(async () => {
  be = await startEchoBackend();
  // The bundled seed, with its target pointed at the local echo backend.
  const seed = readFileSync(join(ROOT, "otoroshi.yaml"), "utf8")
    .replace("hostname: request.otoroshi.io", "hostname: 127.0.0.1")
    .replace("port: 443", `port: ${be.port}`)
    .replace("tls: true", "tls: false");
  gw = await startGateway(seed);
});
afterAll(async () => {
  await gw?.stop();
  await be?.stop();
});

describe(`seed tutorial (${RUNTIME})`, () => {
  test("examples/client-credentials.sh passes against the gateway", async () => {
    const p = spawn(["bash", join(ROOT, "examples/client-credentials.sh"), gw.url], { stdout: "pipe", stderr: "pipe" });
    const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    clearTimeout(timer);
    if (code !== 0) console.error(out, err);
    expect(code).toBe(0);
    expect(out).toContain("OK: the seed tutorial works");
  });

  test("the generated signing key is kept in the state directory with mode 0600", async () => {
    const { statSync } = await import("node:fs");
    const st = statSync(join(gw.dir, "otoroshi-jwt-signing.key.pem"));
    expect(st.mode & 0o777).toBe(0o600);
    const generated = gw.logs.find((l) => l.event === "keypair.generated");
    expect(String(generated?.path)).toContain("otoroshi-jwt-signing.key.pem");
  });

  test("jose's createRemoteJWKSet verifies an issued token against the JWKS URL", async () => {
    const res = await fetch(`${gw.url}/.well-known/otoroshi/oauth/token`, {
      method: "POST",
      headers: { host: "oauth.oto.tools", "content-type": "application/x-www-form-urlencoded", authorization: "Basic " + btoa("my-id:my-secret") },
      body: "grant_type=client_credentials",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const { access_token } = (await res.json()) as { access_token: string };
    recordSecret(access_token); // the log scan (scripts/scan-logs.ts) looks for it
    // The JWKS host must match the domain regex; reach it through a URL whose host is the IP and
    // a fetch wrapper that sets Host, as jose's fetcher cannot.
    const jwks = createRemoteJWKSet(new URL(`${gw.url}/.well-known/otoroshi/oauth/jwks.json`), {
      headers: { host: "oauth.oto.tools" },
    });
    // Otoroshi's default issuer: the request's scheme and Host header.
    const { payload, protectedHeader } = await jwtVerify(access_token, jwks, { audience: "otoroshi", issuer: "http://oauth.oto.tools", typ: "at+jwt" });
    expect(protectedHeader.typ).toBe("at+jwt");
    expect(protectedHeader.alg).toBe("RS256");
    expect(payload.client_id).toBe("my-id");
    expect(payload.sub).toBe("my-id");
    expect(payload.cid).toBe("my-id");
  });
});
