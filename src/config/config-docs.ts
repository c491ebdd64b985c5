// Generates the field reference of docs/configuration.md from the JSON Schema, so every field,
// its type, default and description stay in step with the schema.
import { jsonSchemaObject } from "./json-schema.ts";

type JS = {
  type?: string | string[];
  properties?: Record<string, JS>;
  required?: string[];
  items?: JS;
  anyOf?: JS[];
  oneOf?: JS[];
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  format?: string;
  additionalProperties?: JS | boolean;
};

function typeOf(s: JS): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((e) => `\`${JSON.stringify(e)}\``).join(" \\| ");
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return [...new Set(alts.map(typeOf))].join(" \\| ");
  const t = Array.isArray(s.type) ? s.type.join(" \\| ") : s.type;
  if (t === "array") return `list of ${s.items ? typeOf(s.items) : "any"}`;
  if (t === "object" && s.additionalProperties && typeof s.additionalProperties === "object") return `map of ${typeOf(s.additionalProperties)}`;
  let out = t ?? "any";
  if (s.format === "date-time") out = "ISO 8601 date-time";
  const max = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? s.maximum : undefined;
  const range = s.minimum !== undefined || max !== undefined ? ` (${s.minimum ?? "…"}–${max ?? "…"})` : "";
  return out + range;
}

function fmtDefault(s: JS, required: boolean): string {
  if (s.default !== undefined) return `\`${JSON.stringify(s.default)}\``;
  return required ? "**required**" : "—";
}

function isObject(s: JS): boolean {
  return s.type === "object" && !!s.properties;
}

export function configReference(): string {
  const root = jsonSchemaObject() as JS;
  const sections: string[] = [];
  const walk = (path: string, s: JS): void => {
    const obj = isObject(s) ? s : s.items && isObject(s.items) ? s.items : null;
    const variants = (s.items?.oneOf ?? s.items?.anyOf ?? s.oneOf ?? []).filter(isObject);
    if (!obj && variants.length) {
      for (const v of variants) {
        const name = v.properties?.plugin?.const;
        walk(`${path}[plugin: ${String(name)}]`, v);
      }
      return;
    }
    if (!obj) return;
    const rows = Object.entries(obj.properties!).map(([k, v]) => {
      const req = obj.required?.includes(k) ?? false;
      return `| \`${k}\` | ${typeOf(v)} | ${fmtDefault(v, req)} | ${(v.description ?? "").replace(/\|/g, "\\|")} |`;
    });
    sections.push(`### \`${path || "(top level)"}\`\n\n${s.description ? s.description + "\n\n" : ""}| field | type | default | description |\n|---|---|---|---|\n${rows.join("\n")}\n`);
    for (const [k, v] of Object.entries(obj.properties!)) walk(path ? `${path}.${k}` : k, v);
  };
  walk("", root);
  return sections.join("\n");
}

export const BEGIN = "<!-- BEGIN GENERATED REFERENCE (npm run schema) -->";
export const END = "<!-- END GENERATED REFERENCE -->";

export function withReference(doc: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  const body = `${BEGIN}\n\n${configReference()}\n${END}`;
  if (a < 0 || b < a) return `${doc.trimEnd()}\n\n${body}\n`;
  return doc.slice(0, a) + body + doc.slice(b + END.length);
}
