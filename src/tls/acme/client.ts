// The RFC 8555 client is acme-client (npm), which runs unchanged on Bun, on Deno and inside the
// compiled binary (checked against Pebble on all three; docs/https.md). This file is the thin
// layer the manager sees: one call that turns a name and a key into a certificate chain over
// HTTP-01, and failures that carry the server's problem document (RFC 8555 §6.7, RFC 7807).
// acme-client is loaded on first use, so a gateway without ACME never pays for it.
import http from "node:http";
import https from "node:https";
import type { ChallengeStore } from "./challenges.ts";

type Lib = typeof import("acme-client");

export interface Problem {
  /** e.g. "urn:ietf:params:acme:error:rateLimited"; absent for network failures. */
  type?: string;
  detail: string;
  status?: number;
  /** From Retry-After (RFC 8555 §6.6), when the server sent one. */
  retryAfterMs?: number;
}

export class AcmeFailure extends Error {
  override name = "AcmeFailure";
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(problem.detail);
    this.problem = problem;
  }
}

export interface AcmeClientOptions {
  directory: string;
  /** PEM CA(s) trusted for the ACME server instead of the system's. */
  ca?: string;
  email?: string;
  /** PKCS#8 PEM (ES256). */
  accountKey: string;
}

/** Each ACME request gives up after this long; the manager's backoff decides when to try again. */
const REQUEST_TIMEOUT_MS = 30_000;

let loaded: Promise<Lib> | null = null;
/** The last problem the server answered with; orders run one at a time, so it is this order's. */
let lastProblem: Problem | null = null;

function retryAfter(headers: Record<string, unknown> | undefined): number | undefined {
  const v = headers?.["retry-after"];
  if (typeof v !== "string") return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

interface ProblemDoc {
  type?: unknown;
  detail?: unknown;
  status?: unknown;
}

function asProblem(doc: ProblemDoc | undefined, status: number | undefined, headers: Record<string, unknown> | undefined): Problem | null {
  if (!doc || typeof doc !== "object" || (typeof doc.type !== "string" && typeof doc.detail !== "string")) return null;
  return {
    ...(typeof doc.type === "string" ? { type: doc.type } : {}),
    detail: typeof doc.detail === "string" ? doc.detail : "",
    ...(typeof doc.status === "number" ? { status: doc.status } : status ? { status } : {}),
    ...(retryAfter(headers) !== undefined ? { retryAfterMs: retryAfter(headers) } : {}),
  };
}

/** A problem document in an error response, or in an invalid challenge/authorization/order (§7.1.3-6). */
function record(response: { status?: number; headers?: Record<string, unknown>; data?: unknown } | undefined): void {
  if (!response) return;
  const data = response.data as (ProblemDoc & { status?: unknown; error?: ProblemDoc; challenges?: { error?: ProblemDoc }[] }) | undefined;
  const type = String(response.headers?.["content-type"] ?? "");
  if (type.includes("problem+json")) lastProblem = asProblem(data, response.status, response.headers) ?? lastProblem;
  else if (data && data.status === "invalid") {
    lastProblem = asProblem(data.error ?? data.challenges?.find((c) => c.error)?.error, undefined, undefined) ?? lastProblem;
  }
}

async function lib(): Promise<Lib> {
  loaded ??= import("acme-client").then((m) => {
    const acme = ((m as { default?: Lib }).default ?? m) as Lib;
    const axios = acme.axios;
    axios.defaults.timeout = REQUEST_TIMEOUT_MS;
    // No retries inside a request: the manager retries whole orders with backoff and jitter.
    // (acme-client still retries a badNonce answer at once, as RFC 8555 §6.5 asks.)
    (axios.defaults as { acmeSettings?: { retryMaxAttempts: number } }).acmeSettings!.retryMaxAttempts = 0;
    axios.interceptors.response.use(
      (res) => (record(res as never), res),
      (err: { response?: never }) => {
        record(err.response);
        return Promise.reject(err);
      },
    );
    return acme;
  });
  return loaded;
}

export class AcmeClient {
  private readonly acme: Lib;
  private readonly client: InstanceType<Lib["Client"]>;
  private readonly email: string | undefined;
  private readonly directory: string;

  private constructor(acme: Lib, client: InstanceType<Lib["Client"]>, opts: AcmeClientOptions) {
    this.acme = acme;
    this.client = client;
    this.email = opts.email;
    this.directory = opts.directory;
  }

  static async create(opts: AcmeClientOptions): Promise<AcmeClient> {
    const acme = await lib();
    // One ACME directory per process (server.https.acme is read at start), so the agent is global.
    if (opts.ca) acme.axios.defaults.httpsAgent = new https.Agent({ ca: opts.ca, keepAlive: true });
    const client = new acme.Client({
      directoryUrl: opts.directory,
      accountKey: opts.accountKey,
      // Polling an order or challenge: 0.5 s, then doubling to 10 s, 12 tries (~1.5 min).
      backoffAttempts: 12,
      backoffMin: 500,
      backoffMax: 10_000,
    });
    return new AcmeClient(acme, client, opts);
  }

  /**
   * Orders a certificate for one name over HTTP-01 and returns its chain (PEM, leaf first).
   * The account is created on first use, or found again by its key (RFC 8555 §7.3.1).
   */
  async issue(domain: string, keyPem: string, challenges: ChallengeStore): Promise<string> {
    lastProblem = null;
    const [, csr] = await this.acme.crypto.createCsr({ commonName: domain, altNames: [domain] }, keyPem);
    try {
      return await this.client.auto({
        csr,
        ...(this.email ? { email: this.email } : {}),
        termsOfServiceAgreed: true,
        challengePriority: ["http-01"],
        // acme-client would fetch the challenge URL itself first, through this machine's DNS;
        // behind NAT or split DNS that check fails where the CA's would succeed.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          if (challenge.type === "http-01") challenges.set(challenge.token, keyAuthorization);
        },
        challengeRemoveFn: async (_authz, challenge) => {
          challenges.delete(challenge.token);
        },
      });
    } catch (e) {
      if (lastProblem) throw new AcmeFailure(lastProblem);
      const err = e as { code?: string; message?: string };
      if (err.code) throw new AcmeFailure({ detail: `${err.code}: ${err.message ?? ""}`.trim() });
      // acme-client loses a network error once its retries are spent (it reports a TypeError
      // about the missing response instead): ask the directory ourselves what went wrong.
      throw new AcmeFailure({ detail: (await this.reach()) ?? err.message ?? String(e) });
    }
  }

  /** Why the directory cannot be fetched ("ECONNREFUSED: …"), or null when it can. */
  private reach(): Promise<string | null> {
    return new Promise((resolve) => {
      const agent = this.acme.axios.defaults.httpsAgent as https.Agent | undefined;
      const url = new URL(this.directory);
      const get = url.protocol === "https:" ? https.get : http.get;
      const req = get(url, { ...(agent && url.protocol === "https:" ? { agent } : {}), timeout: 10_000 }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 400 ? `the ACME directory answered HTTP ${res.statusCode}` : null);
      });
      req.on("timeout", () => req.destroy(Object.assign(new Error("no answer within 10 s"), { code: "ETIMEDOUT" })));
      req.on("error", (e: Error & { code?: string }) => resolve(`cannot reach the ACME server: ${e.code ? `${e.code}: ` : ""}${e.message}`));
    });
  }
}
