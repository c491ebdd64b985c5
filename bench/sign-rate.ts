// Raw JWT signing rate in one Bun process, the ceiling the token endpoint is compared with.
//   bun bench/sign-rate.ts --impl jose|signJwt --pem key.pem --kid ID [--seconds 5] [--warmup 1]
// jose: importPKCS8 once, then `await new SignJWT(claims).setProtectedHeader(...).sign(key)` in a
// loop (one at a time, as one request would). signJwt: the gateway's own synchronous signer
// (src/keys/jwt.ts) with the key imported by src/keys/keyring.ts. Same header and claims as
// the token endpoint issues (RFC 9068). Prints one JSON line.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { importPKCS8, SignJWT } from "jose";
import { signJwt } from "../src/keys/jwt.ts";
import { importKeyPair } from "../src/keys/keyring.ts";

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

const impl = arg("impl");
const pem = readFileSync(arg("pem"), "utf8");
const kid = arg("kid");
const seconds = Number(arg("seconds", "5"));
const warmup = Number(arg("warmup", "1"));

const pair = importKeyPair(kid, pem);
const alg = pair.alg;

function claims(): Record<string, unknown> {
  const iat = Math.floor(Date.now() / 1000);
  return { iss: "http://oauth.test", sub: "bench-client", aud: "otoroshi", client_id: "bench-client", cid: "bench-client", jti: randomUUID(), iat, nbf: iat, exp: iat + 3600 };
}

let signOnce: () => Promise<string> | string;
if (impl === "jose") {
  const key = await importPKCS8(pem, alg);
  const header = { alg, typ: "at+jwt", kid };
  signOnce = () => new SignJWT(claims()).setProtectedHeader(header).sign(key);
} else if (impl === "signJwt") {
  signOnce = () => signJwt(pair, claims());
} else {
  throw new Error(`--impl must be jose or signJwt, got ${impl}`);
}

async function loop(ms: number): Promise<{ n: number; elapsed: number }> {
  const start = performance.now();
  const end = start + ms;
  let n = 0;
  let t = start;
  while (t < end) {
    // Check the clock every 16 signatures: cheap next to a signature, precise enough.
    for (let i = 0; i < 16; i++) await signOnce();
    n += 16;
    t = performance.now();
  }
  return { n, elapsed: t - start };
}

await loop(warmup * 1000);
const { n, elapsed } = await loop(seconds * 1000);
console.log(JSON.stringify({ impl, alg, signatures: n, seconds: +(elapsed / 1000).toFixed(3), rate: Math.round(n / (elapsed / 1000)) }));
