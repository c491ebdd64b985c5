// Finds the credential a request carries. Detection order as Otoroshi's detectApikeyTuple:
// client id only → custom headers → JWT → Basic → otoapk_ bearer; the first enabled extractor
// that finds something wins. Each extractor reads its sources in Otoroshi's order.
import type { ApikeysPluginConfig } from "../../config/schema.ts";
import type { RequestContext } from "../../request.ts";
import { authParam, looksLikeJwt, parseBasic, parseOtoBearer } from "../credentials.ts";

export type Source = { kind: "header" | "query" | "cookie"; name: string };

export type Credential =
  | { kind: "clientId"; clientId: string; source: Source }
  | { kind: "secret"; via: "basic" | "customHeaders"; clientId: string; secret: string; source: Source }
  | { kind: "jwt"; token: string; source: Source }
  | { kind: "otoBearer"; clientId: string; bearer: string; source: Source }
  /** Something that looks like a credential but cannot be parsed (bad base64, …): a failure, not "none". */
  | { kind: "malformed"; source: Source };

type Ex = ApikeysPluginConfig["extractors"];

function fromSources(
  ctx: RequestContext,
  headerName: string | null,
  queryName: string | null,
  cookieName: string | null,
  accept: (v: string, s: Source) => Credential | null,
  withAuthorization?: "basic" | "bearer",
): Credential | null {
  const h = ctx.req.headers;
  if (headerName) {
    const v = h.get(headerName);
    if (v) {
      const src: Source = { kind: "header", name: headerName.toLowerCase() };
      const stripped = withAuthorization ? (authParam(v, withAuthorization) ?? v.trim()) : v.trim();
      const c = accept(stripped, src);
      if (c) return c;
    }
  }
  if (withAuthorization) {
    const v = authParam(h.get("authorization"), withAuthorization);
    if (v) {
      const c = accept(v, { kind: "header", name: "authorization" });
      if (c) return c;
    }
  }
  if (queryName && ctx.search) {
    const all = ctx.query().getAll(queryName);
    const v = all[all.length - 1];
    if (v) {
      const c = accept(v, { kind: "query", name: queryName });
      if (c) return c;
    }
  }
  if (cookieName && h.has("cookie")) {
    const v = ctx.cookies().get(cookieName);
    if (v) {
      const c = accept(v, { kind: "cookie", name: cookieName });
      if (c) return c;
    }
  }
  return null;
}

export function extractCredential(ctx: RequestContext, ex: Ex): Credential | null {
  if (ex.clientId.enabled) {
    const c = fromSources(ctx, ex.clientId.headerName, ex.clientId.queryName, ex.clientId.cookieName, (v, source) =>
      // An otoapk_ bearer sent in x-api-key belongs to the bearer extractor (Otoroshi W25).
      v.startsWith("otoapk_") ? null : { kind: "clientId", clientId: v, source });
    if (c) return c;
  }
  if (ex.customHeaders.enabled) {
    const id = ctx.req.headers.get(ex.customHeaders.clientIdHeaderName);
    const secret = ctx.req.headers.get(ex.customHeaders.clientSecretHeaderName);
    if (id && secret !== null) return { kind: "secret", via: "customHeaders", clientId: id.trim(), secret, source: { kind: "header", name: ex.customHeaders.clientIdHeaderName.toLowerCase() } };
  }
  if (ex.jwt.enabled) {
    const c = fromSources(ctx, ex.jwt.headerName, ex.jwt.queryName, ex.jwt.cookieName, (v, source) => (looksLikeJwt(v) ? { kind: "jwt", token: v, source } : null), "bearer");
    if (c) return c;
  }
  if (ex.basic.enabled) {
    const c = fromSources(
      ctx,
      ex.basic.headerName,
      ex.basic.queryName,
      ex.basic.cookieName,
      (v, source) => {
        const b = parseBasic(v);
        return b ? { kind: "secret", via: "basic", clientId: b.id, secret: b.secret, source } : { kind: "malformed", source };
      },
      "basic",
    );
    if (c) return c;
  }
  if (ex.otoBearer.enabled) {
    const c = fromSources(
      ctx,
      ex.otoBearer.headerName,
      ex.otoBearer.queryName,
      ex.otoBearer.cookieName,
      (v, source) => {
        const b = parseOtoBearer(v);
        return b ? { kind: "otoBearer", clientId: b.clientId, bearer: v, source } : null;
      },
      "bearer",
    );
    if (c) return c;
    // Otoroshi also reads an otoapk_ bearer from x-api-key.
    const x = ctx.req.headers.get("x-api-key");
    const b = x ? parseOtoBearer(x.trim()) : null;
    if (b) return { kind: "otoBearer", clientId: b.clientId, bearer: x!.trim(), source: { kind: "header", name: "x-api-key" } };
  }
  // A bearer nobody understood is a failed credential, not a missing one.
  if ((ex.jwt.enabled || ex.otoBearer.enabled) && authParam(ctx.req.headers.get("authorization"), "bearer") !== null) {
    return { kind: "malformed", source: { kind: "header", name: "authorization" } };
  }
  return null;
}

/** Every place a credential may be read from, for wiping them all before the backend sees them. */
export function credentialSources(ex: Ex): { headers: string[]; query: string[]; cookies: string[] } {
  const headers = new Set<string>();
  const query = new Set<string>();
  const cookies = new Set<string>();
  const add = (e: { enabled: boolean; headerName?: string | null; queryName?: string | null; cookieName?: string | null }) => {
    if (!e.enabled) return;
    if (e.headerName) headers.add(e.headerName.toLowerCase());
    if (e.queryName) query.add(e.queryName);
    if (e.cookieName) cookies.add(e.cookieName);
  };
  add(ex.clientId);
  add(ex.jwt);
  add(ex.basic);
  add(ex.otoBearer);
  if (ex.customHeaders.enabled) {
    headers.add(ex.customHeaders.clientIdHeaderName.toLowerCase());
    headers.add(ex.customHeaders.clientSecretHeaderName.toLowerCase());
  }
  return { headers: [...headers], query: [...query], cookies: [...cookies] };
}
