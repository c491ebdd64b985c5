// API keys compiled once per snapshot: an index by clientId, and per client its record, its
// secrets ready for constant-time comparison and its otoapk_ bearers. All three are derived on
// the client's first use and kept for the snapshot's life (it is one per reload): derived up
// front for 10,000 keys they cost ~60–90 ms of every reload (mostly an HMAC per bearer), on the
// thread that serves requests, for clients that mostly do not call between two reloads.
import { createHmac } from "node:crypto";
import type { ApiKeyConfig } from "../../config/schema.ts";
import { compileSecret, dummyCompare, isHashedSecret, safeEqual, type SecretMatcher } from "../secrets.ts";

export interface ApiKeyRecord {
  readonly clientId: string;
  readonly clientName: string;
  readonly enabled: boolean;
  /** Epoch ms after which the key is refused; null: never. */
  readonly validUntil: number | null;
  readonly routes: ReadonlySet<string>;
  readonly groups: ReadonlySet<string>;
  readonly readOnly: boolean;
  readonly allowClientIdOnly: boolean;
  readonly signKeyPair: string | undefined;
  /** Allowed scopes (metadata "scope"); null: none declared. */
  readonly scopes: readonly string[] | null;
  readonly config: ApiKeyConfig;
}

/** A client's secret material, built on its first check (see the file comment). */
interface Secrets {
  current: SecretMatcher;
  previous: { match: SecretMatcher; until: number }[];
  /** otoapk_ bearers of the plain-text secrets (a hashed one has none); until: null = current. */
  bearers: { value: string; until: number | null }[] | null;
}

export function toEpochMs(v: number | string | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  return typeof v === "number" ? v : Date.parse(v);
}

/** otoapk_<clientId>_<hex(HMAC-SHA256(secret, "otoapk_<clientId>"))> as Otoroshi computes it. */
export function otoBearerFor(clientId: string, plainSecret: string): string {
  const data = `otoapk_${clientId}`;
  return `${data}_${createHmac("sha256", plainSecret).update(data).digest("hex")}`;
}

/** Compared against when there is no bearer to compare against (checkBearer). */
const DUMMY_BEARER = otoBearerFor("-", "-");

export class ApiKeyRegistry {
  private readonly configs = new Map<string, ApiKeyConfig>();
  private readonly records = new Map<string, ApiKeyRecord>();
  private readonly secrets = new Map<string, Secrets>();

  constructor(list: readonly ApiKeyConfig[]) {
    for (const k of list) this.configs.set(k.clientId, k);
  }

  private recordOf(k: ApiKeyConfig): ApiKeyRecord {
    const routes = new Set<string>();
    const groups = new Set<string>();
    for (const e of k.authorizedEntities) {
      if (e.startsWith("route_")) routes.add(e.slice(6));
      else if (e.startsWith("group_")) groups.add(e.slice(6));
    }
    const scope = k.metadata.scope?.trim();
    return Object.freeze({
      clientId: k.clientId,
      clientName: k.clientName ?? k.clientId,
      enabled: k.enabled,
      validUntil: toEpochMs(k.validUntil),
      routes,
      groups,
      readOnly: k.readOnly,
      allowClientIdOnly: k.allowClientIdOnly,
      signKeyPair: k.metadata["jwt-sign-keypair"],
      scopes: scope ? [...new Set(scope.split(/\s+/))] : null,
      config: k,
    });
  }

  private secretsOf(clientId: string): Secrets | undefined {
    const known = this.secrets.get(clientId);
    if (known) return known;
    const k = this.configs.get(clientId);
    if (!k) return undefined;
    const s: Secrets = {
      current: compileSecret(k.clientSecret),
      previous: k.previousSecrets.map((p) => ({ match: compileSecret(p.secret), until: toEpochMs(p.validUntil) ?? 0 })),
      bearers: null,
    };
    this.secrets.set(clientId, s);
    return s;
  }

  get size(): number {
    return this.configs.size;
  }

  get(clientId: string): ApiKeyRecord | undefined {
    const known = this.records.get(clientId);
    if (known) return known;
    const k = this.configs.get(clientId);
    if (!k) return undefined;
    const record = this.recordOf(k);
    this.records.set(clientId, record);
    return record;
  }

  /** enabled and not past validUntil. */
  isActive(k: ApiKeyRecord, now: number): boolean {
    return k.enabled && (k.validUntil === null || now < k.validUntil);
  }

  /** Constant-time check of a presented secret against the current and unexpired previous secrets. */
  checkSecret(clientId: string, presented: string, now: number): boolean {
    const s = this.secretsOf(clientId);
    if (!s) {
      dummyCompare(presented);
      return false;
    }
    let ok = s.current(presented);
    for (const p of s.previous) if (p.match(presented) && now < p.until) ok = true;
    return ok;
  }

  checkBearer(clientId: string, bearer: string, now: number): boolean {
    const s = this.secretsOf(clientId);
    let ok = false;
    if (s && !s.bearers) {
      const k = this.configs.get(clientId)!;
      const bearers: Secrets["bearers"] = [];
      if (!isHashedSecret(k.clientSecret)) bearers.push({ value: otoBearerFor(clientId, k.clientSecret), until: null });
      for (const p of k.previousSecrets) if (!isHashedSecret(p.secret)) bearers.push({ value: otoBearerFor(clientId, p.secret), until: toEpochMs(p.validUntil) ?? 0 });
      s.bearers = bearers;
    }
    const bearers = s?.bearers ?? [];
    for (const b of bearers) if (safeEqual(b.value, bearer) && (b.until === null || now < b.until)) ok = true;
    // At least one comparison whatever the id, as checkSecret does: an unknown id (or a key
    // whose secrets are hashed) must not answer faster than a known one.
    if (bearers.length === 0) safeEqual(DUMMY_BEARER, bearer);
    return ok;
  }

  authorizedOn(k: ApiKeyRecord, route: { id: string; groups: ReadonlySet<string> }): boolean {
    if (k.routes.has(route.id)) return true;
    for (const g of route.groups) if (k.groups.has(g)) return true;
    return false;
  }
}
