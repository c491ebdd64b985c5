// Shared set-up for the ClientCredentialService tests: real key pairs, a registry parsed with
// the config schema (so defaults apply), and RequestContexts built the way the gateway does.
import { expect } from "bun:test";
import { ApiKey, ClientCredentialConfig } from "../../../src/config/schema.ts";
import { generateKeyPairPem } from "../../../src/keys/generate.ts";
import type { GenAlg } from "../../../src/keys/generate.ts";
import { createKeyring, importKeyPair } from "../../../src/keys/keyring.ts";
import type { KeyPair } from "../../../src/keys/keyring.ts";
import { compileAddressMatcher } from "../../../src/net/cidr.ts";
import { ApiKeyRegistry } from "../../../src/plugins/apikeys/registry.ts";
import { createClientCredentialService } from "../../../src/plugins/client-credentials/index.ts";
import type { FailureGuard } from "../../../src/plugins/types.ts";
import { createContext } from "../../../src/request.ts";
import type { RequestContext } from "../../../src/request.ts";
import type { z } from "zod";

export const NOW = 1_700_000_000_000;
export const HOST = "oauth.oto.tools";
export const BASE = `http://${HOST}:8080`;
export const TOKEN_URL = `${BASE}/.well-known/otoroshi/oauth/token`;
export const INTROSPECT_URL = `${TOKEN_URL}/introspect`;
export const JWKS_URL = `${BASE}/.well-known/otoroshi/oauth/jwks.json`;

export const ALGS: GenAlg[] = ["RS256", "ES256", "ES384", "ES512", "EdDSA"];

const pems = new Map<string, string>();
/** A key pair generated once per (alg, id) and test file; its id is `k-<alg>` by default. */
export function keyPair(alg: GenAlg, id = `k-${alg.toLowerCase()}`): KeyPair {
  const slot = `${alg} ${id}`;
  let pem = pems.get(slot);
  if (pem === undefined) pems.set(slot, pem = generateKeyPairPem(alg).privateKeyPem);
  return importKeyPair(id, pem);
}

export const DEFAULT_KP = "otoroshi-jwt-signing";

export type ApiKeyInput = z.input<typeof ApiKey>;
export type CcsInput = z.input<typeof ClientCredentialConfig>;

/** The clients most tests use. Secrets exercise RFC 6749 Appendix B encoding. */
export const CLIENTS: ApiKeyInput[] = [
  { clientId: "my-id", clientSecret: "my-secret", metadata: { scope: "read write" } },
  { clientId: "noscope", clientSecret: "noscope-secret" },
  { clientId: "odd", clientSecret: "a+b%20c:d é" },
  { clientId: "disabled", clientSecret: "s3cret", enabled: false },
  { clientId: "expired", clientSecret: "s3cret", validUntil: NOW - 1000 },
  { clientId: "future", clientSecret: "s3cret", validUntil: NOW + 86_400_000 },
  { clientId: "rotated", clientSecret: "new-secret", previousSecrets: [{ secret: "old-secret", validUntil: NOW + 60_000 }] },
  ...ALGS.map((alg) => ({ clientId: `c-${alg.toLowerCase()}`, clientSecret: "s3cret", metadata: { "jwt-sign-keypair": `k-${alg.toLowerCase()}` } })),
];

export interface Setup {
  config?: CcsInput;
  clients?: ApiKeyInput[];
  /** Extra signing key pairs; the default one (ES256) and every k-<alg> are always there. */
  keys?: KeyPair[];
  guard?: FailureGuard | null;
  scopes?: string[];
}

export function build(setup: Setup = {}) {
  const config = ClientCredentialConfig.parse({ domain: "oauth\\.oto\\.tools", secure: false, ...setup.config });
  const registry = new ApiKeyRegistry((setup.clients ?? CLIENTS).map((c) => ApiKey.parse(c)));
  const signing = [keyPair("ES256", DEFAULT_KP), ...ALGS.map((a) => keyPair(a)), ...(setup.keys ?? [])];
  const signingKeys = createKeyring(signing);
  const svc = createClientCredentialService(config, { registry, signingKeys, guard: setup.guard ?? null, scopes: setup.scopes });
  return { svc, config, registry, signingKeys };
}

export type Service = ReturnType<typeof build>["svc"];

export interface CallOptions {
  secure?: boolean;
  now?: number;
  ip?: string;
  trustedProxies?: string[];
  /** The id the front door would have given the request. */
  requestId?: string;
}

export function context(req: Request, opts: CallOptions = {}): RequestContext {
  const info = { remoteAddress: opts.ip ?? "192.0.2.10", secure: opts.secure ?? false };
  return createContext(req, info, compileAddressMatcher(opts.trustedProxies ?? []), opts.now ?? NOW, opts.requestId ?? null);
}

/** What the gateway does: the sink answers when it matches; null means it let the request pass. */
export async function call(svc: Service, req: Request, opts: CallOptions = {}): Promise<Response | null> {
  const ctx = context(req, opts);
  return svc.matches(ctx) ? svc.handle(ctx) : null;
}

export async function send(svc: Service, req: Request, opts: CallOptions = {}): Promise<Response> {
  const res = await call(svc, req, opts);
  if (res === null) throw new Error(`the service did not match ${req.method} ${req.url}`);
  return res;
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`, "utf8").toString("base64")}`;

/** RFC 6749 Appendix B encoding, as oauth4webapi does it. */
export const formEncode = (s: string) => new URLSearchParams({ s }).toString().slice(2);

export function form(url: string, body: string | Record<string, string>, headers: Record<string, string> = {}): Request {
  const text = typeof body === "string" ? body : new URLSearchParams(body).toString();
  return new Request(url, { method: "POST", headers: { host: `${HOST}:8080`, "content-type": "application/x-www-form-urlencoded", ...headers }, body: text });
}

export function json(url: string, body: unknown, headers: Record<string, string> = {}): Request {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return new Request(url, { method: "POST", headers: { host: `${HOST}:8080`, "content-type": "application/json", ...headers }, body: text });
}

export function get(url: string, method = "GET", headers: Record<string, string> = {}): Request {
  return new Request(url, { method, headers: { host: new URL(url).host, ...headers } });
}

export async function tokenFor(svc: Service, clientId: string, secret: string, extra: Record<string, string> = {}, opts: CallOptions = {}): Promise<string> {
  const res = await send(svc, form(TOKEN_URL, { grant_type: "client_credentials", client_id: clientId, client_secret: secret, ...extra }), opts);
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

export function decodeJwt(token: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = token.split(".");
  return { header: JSON.parse(Buffer.from(h!, "base64url").toString()), payload: JSON.parse(Buffer.from(p!, "base64url").toString()) };
}

/** A guard that records calls and locks a pair out after `limit` failures. */
export function recordingGuard(limit = 3) {
  const failures = new Map<string, number>();
  const guard: FailureGuard = {
    retryAfter: (id, ip) => ((failures.get(`${id}|${ip}`) ?? 0) >= limit ? 42 : 0),
    recordFailure: (id, ip) => {
      const n = failures.get(`${id}|${ip}`) ?? 0;
      if (n >= limit) return 42;
      failures.set(`${id}|${ip}`, n + 1);
      return 0;
    },
  };
  return { guard, failures };
}

/** Asserts an RFC 6749 §5.2 error answer. */
export async function expectError(res: Response, status: number, error: string, description?: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/json");
  expect(res.headers.get("cache-control")).toBe("no-store");
  const body = (await res.json()) as Record<string, unknown>;
  expect(body.error).toBe(error);
  expect(typeof body.error_description).toBe("string");
  // RFC 6749 §5.2: error_description is printable ASCII without '"' or '\'.
  expect(body.error_description as string).toMatch(/^[\x20\x21\x23-\x5b\x5d-\x7e]+$/);
  if (description !== undefined) expect(body.error_description).toBe(description);
}
