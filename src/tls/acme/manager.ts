// Keeps one ACME certificate per managed name: loads what stateDir has at start, orders what is
// missing or due, one order at a time in the background, and retries failures with jittered
// exponential backoff. Nothing here blocks the start or a request, and no failure escapes: each
// one is a single `acme.order_failed` log line and the listener keeps serving what it has.
import { generateKeyPairSync } from "node:crypto";
import type { AcmeConfig } from "../../config/schema.ts";
import { log } from "../../log.ts";
import { ChallengeStore } from "./challenges.ts";
import { AcmeClient, AcmeFailure, type Problem } from "./client.ts";
import { renewalTime, retryDelay } from "./schedule.ts";
import { AcmeStore, type StoredCertificate } from "./store.ts";
import type { CertificateState } from "../../monitoring/gauges.ts";

/** A timer never sleeps longer than this (setTimeout overflows past ~24.8 days). */
const MAX_SLEEP_MS = 86_400_000;

interface NameState {
  cert: StoredCertificate | null;
  /** Epoch ms of the next order attempt. */
  next: number;
  failures: number;
  lastError: (Problem & { at: string }) | null;
}

export interface AcmeManagerOptions {
  acme: AcmeConfig;
  stateDir: string;
  clock?: () => number;
  random?: () => number;
}

export class AcmeManager {
  readonly challenges = new ChallengeStore();
  /** Called after the set of certificates to serve changed (the HTTPS listener sets it). */
  onChange: () => void = () => {};
  private readonly store: AcmeStore;
  private readonly opts: AcmeManagerOptions;
  private readonly names = new Map<string, NameState>();
  private readonly clock: () => number;
  private readonly random: () => number;
  private client: AcmeClient | null = null;
  private running = false;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(opts: AcmeManagerOptions) {
    this.opts = opts;
    this.store = new AcmeStore(opts.stateDir, opts.acme.directory);
    this.clock = opts.clock ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  /** The certificates to serve (one per managed name that has one), in name order. */
  certificates(): StoredCertificate[] {
    return [...this.names.values()].flatMap((s) => (s.cert ? [s.cert] : []));
  }

  /**
   * Sets the managed names (at start and after each applied reload). A new name is served from
   * stateDir at once when a certificate is stored there, otherwise it is ordered.
   */
  setDomains(domains: readonly string[]): void {
    let changed = false;
    for (const name of [...this.names.keys()]) {
      if (domains.includes(name)) continue;
      changed ||= this.names.get(name)!.cert !== null;
      this.names.delete(name);
    }
    for (const name of domains) {
      if (this.names.has(name)) continue;
      const cert = this.store.load(name);
      const state: NameState = { cert, next: 0, failures: 0, lastError: null };
      this.names.set(name, state);
      if (cert) {
        changed = true;
        state.next = this.dueAt(name, cert);
        log("info", "acme.loaded", { domain: name, serial: cert.serial, notAfter: new Date(cert.notAfter).toISOString(), renewAt: new Date(state.next).toISOString() });
      } else {
        state.next = this.clock();
        log("info", "acme.pending", { domain: name, message: "no certificate yet: this name gets the default certificate until its ACME order completes" });
      }
    }
    if (changed) this.onChange();
    this.schedule();
  }

  status(): Record<string, unknown>[] {
    const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
    return [...this.names].map(([name, s]) => ({
      names: [name],
      source: "acme",
      serial: s.cert?.serial ?? null,
      notAfter: iso(s.cert?.notAfter),
      nextAttempt: iso(s.next),
      lastError: s.lastError,
    }));
  }

  /** The same names for the metrics endpoint (src/monitoring/gauges.ts). */
  certificateStates(): CertificateState[] {
    return [...this.names].map(([name, s]) => ({ name, source: "acme", notAfter: s.cert?.notAfter ?? null, failing: s.lastError !== null }));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private dueAt(name: string, cert: StoredCertificate): number {
    const r = renewalTime(cert.notBefore, cert.notAfter, this.opts.acme.renewBefore);
    if (r.clamped) {
      log("warn", "acme.renew_before_too_long", {
        domain: name,
        renewBefore: this.opts.acme.renewBefore,
        lifetimeDays: Math.round(((cert.notAfter - cert.notBefore) / 86_400_000) * 100) / 100,
        message: "renewBefore covers the whole lifetime of the certificates this CA issues; renewing with a third of the lifetime left instead",
      });
    }
    return r.at;
  }

  private schedule(): void {
    if (this.stopped || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    let next = Infinity;
    for (const s of this.names.values()) next = Math.min(next, s.next);
    if (next === Infinity) return;
    const wait = Math.max(0, Math.min(MAX_SLEEP_MS, next - this.clock()));
    this.timer = setTimeout(() => void this.runDue(), wait);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Orders every due name, one at a time, then sleeps until the next one is due. */
  private async runDue(): Promise<void> {
    this.timer = null;
    if (this.running || this.stopped) return;
    this.running = true;
    try {
      for (;;) {
        const now = this.clock();
        const due = [...this.names].filter(([, s]) => s.next <= now).sort((a, b) => a[1].next - b[1].next)[0];
        if (!due || this.stopped) break;
        await this.order(due[0], due[1]);
      }
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  private async order(name: string, state: NameState): Promise<void> {
    const started = this.clock();
    const renewal = state.cert !== null;
    log("info", "acme.order", { domain: name, reason: renewal ? "renewal" : "new", directory: this.opts.acme.directory, attempt: state.failures + 1 });
    try {
      this.client ??= await AcmeClient.create({ directory: this.opts.acme.directory, ca: this.opts.acme.directoryCa, email: this.opts.acme.email, accountKey: this.store.accountKey() });
      // A fresh key for every certificate, renewals included.
      const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }) as string;
      const chain = await this.client.issue(name, key, this.challenges);
      const cert = this.store.save(name, chain, key);
      if (this.names.get(name) !== state) return; // dropped by a reload meanwhile
      Object.assign(state, { cert, failures: 0, lastError: null, next: this.dueAt(name, cert) });
      log("info", "acme.issued", {
        domain: name,
        serial: cert.serial,
        notAfter: new Date(cert.notAfter).toISOString(),
        renewAt: new Date(state.next).toISOString(),
        durationMs: this.clock() - started,
      });
      this.onChange();
    } catch (e) {
      const problem: Problem = e instanceof AcmeFailure ? e.problem : { detail: (e as Error).message ?? String(e) };
      state.failures += 1;
      const delay = retryDelay(state.failures, this.random(), problem.retryAfterMs);
      state.next = this.clock() + delay;
      state.lastError = { ...problem, at: new Date(this.clock()).toISOString() };
      // warn while a valid certificate is still served; error when the name has none.
      const valid = state.cert !== null && state.cert.notAfter > this.clock();
      log(valid ? "warn" : "error", "acme.order_failed", {
        domain: name,
        reason: renewal ? "renewal" : "new",
        problem: { type: problem.type ?? null, detail: problem.detail, status: problem.status ?? null },
        attempt: state.failures,
        retryAt: new Date(state.next).toISOString(),
        serving: valid ? "the current certificate" : "the default certificate",
      });
    }
  }
}
