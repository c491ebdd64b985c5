// Host + path routing compiled once per snapshot. Exact hosts first, then wildcards (most
// specific suffix first), then the catch-all "*" (any host); within a host, the longest path
// prefix on whole segments wins
// (`/api` matches `/api` and `/api/x`, never `/apix` — Otoroshi W29).
import { parseDomain } from "./domain.ts";
import { lenientReading } from "./path.ts";

export interface RouteEntry<R> {
  readonly route: R;
  readonly prefix: string;
  readonly methods: ReadonlySet<string> | null;
}

export type RouteMatch<R> = { kind: "route"; route: R; prefix: string } | { kind: "method"; allow: string[] } | null;

interface HostTable<R> {
  entries: RouteEntry<R>[]; // longest prefix first
}

export interface RouterInput<R> {
  route: R;
  domains: readonly string[];
  methods?: readonly string[];
}

// `path` is canonical (router/path.ts), as the prefixes are; "*" (OPTIONS's asterisk form) matches none.
function pathMatches(path: string, prefix: string): boolean {
  if (prefix === "/") return path.charCodeAt(0) === 47;
  return path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 47 /* / */);
}

export class Router<R> {
  private readonly exact = new Map<string, HostTable<R>>();
  private readonly wildcards: { suffix: string; table: HostTable<R> }[] = [];
  private readonly any: HostTable<R> = { entries: [] };

  constructor(inputs: readonly RouterInput<R>[]) {
    const wild = new Map<string, HostTable<R>>();
    for (const input of inputs) {
      const methods = input.methods?.length ? new Set(input.methods.map((m) => m.toUpperCase())) : null;
      for (const d of input.domains) {
        const parsed = parseDomain(d);
        if (!parsed.ok) continue; // reported at validation time
        const { host, wildcard, path } = parsed.spec;
        const map = wildcard ? wild : this.exact;
        let table = host === "" ? this.any : map.get(host);
        if (!table) map.set(host, table = { entries: [] });
        table.entries.push({ route: input.route, prefix: path, methods });
      }
    }
    const byLength = (a: RouteEntry<R>, b: RouteEntry<R>) => b.prefix.length - a.prefix.length;
    for (const t of this.exact.values()) t.entries.sort(byLength);
    this.any.entries.sort(byLength);
    for (const [suffix, table] of wild) {
      table.entries.sort(byLength);
      this.wildcards.push({ suffix: "." + suffix, table });
    }
    // More labels = more specific (`*.a.example.com` before `*.example.com`).
    this.wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
  }

  match(host: string, path: string, method: string): RouteMatch<R> {
    let allow: Set<string> | null = null;
    const tryTable = (t: HostTable<R> | undefined): RouteMatch<R> => {
      if (!t) return null;
      for (const e of t.entries) {
        if (!pathMatches(path, e.prefix)) continue;
        if (e.methods === null || e.methods.has(method) || (method === "HEAD" && e.methods.has("GET"))) return { kind: "route", route: e.route, prefix: e.prefix };
        allow ??= new Set();
        for (const m of e.methods) allow.add(m);
      }
      return null;
    };
    const exact = tryTable(this.exact.get(host));
    if (exact) return exact;
    for (const w of this.wildcards) {
      if (host.length > w.suffix.length && host.endsWith(w.suffix)) {
        const m = tryTable(w.table);
        if (m) return m;
      }
    }
    const any = tryTable(this.any);
    if (any) return any;
    if (allow) return { kind: "method", allow: [...(allow as Set<string>)].sort() };
    return null;
  }
}

/**
 * null when a lenient backend's reading of `path` (router/path.ts lenientReading) lands where
 * the gateway's does: same route, same prefix. Otherwise why the request is refused: routing
 * on one reading while the backend acts on another would let `/admin;x/users` or
 * `/pub%2F..%2Fadmin` past a route's plugins or out of its prefix.
 */
export function ambiguity<R>(router: Router<R>, host: string, path: string, method: string, chosen: { route: R; prefix: string }): string | null {
  const reading = lenientReading(path);
  if (reading === null) return null;
  if (typeof reading !== "string") return reading.problem;
  const other = router.match(host, reading, method);
  if (other !== null && other.kind === "route" && other.route === chosen.route && other.prefix === chosen.prefix) return null;
  return "Ambiguous request path: a backend that reads ';' or an encoded '/' or '\\' as a separator would route it elsewhere";
}
