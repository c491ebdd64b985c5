// JSON Schema for editors (yaml-language-server) and validators, generated from the zod schema.
//
// The committed schema passes ajv in its default strict mode: no `format` keyword (ajv knows
// none without the ajv-formats plugin, and zod emits non-standard ones such as "starts_with"):
// each is dropped where zod also emitted a `pattern` saying the same, or replaced by one.
import { z } from "zod";
import { Config } from "./schema.ts";

/** Patterns for the formats zod emits without one (z.url). */
const FORMAT_PATTERNS: Record<string, string> = {
  uri: "^[A-Za-z][A-Za-z0-9+.-]*://[^\\s/?#]+[^\\s]*$",
};

type ZodNode = { _zod: { def: { type: string; innerType?: ZodNode; element?: ZodNode; shape?: Record<string, ZodNode>; defaultValue?: unknown } } };
type JsonNode = { properties?: Record<string, JsonNode>; items?: JsonNode; default?: unknown };

/**
 * zod leaves `default` out of the input schema of a list whose items transform (`routes: []`);
 * put back every default an object field declares, so editors and docs show it.
 */
function restoreDefaults(zod: ZodNode, json: JsonNode): void {
  let node = zod;
  while (node._zod.def.type === "default" || node._zod.def.type === "prefault" || node._zod.def.type === "optional") {
    const def = node._zod.def;
    if (def.type === "default" && json.default === undefined) {
      const v = def.defaultValue;
      if (v === null || ["string", "number", "boolean"].includes(typeof v) || Array.isArray(v)) json.default = v;
    }
    node = def.innerType!;
  }
  if (node._zod.def.type === "array" && node._zod.def.element && json.items) return restoreDefaults(node._zod.def.element, json.items);
  const shape = node._zod.def.shape;
  if (node._zod.def.type !== "object" || !shape || !json.properties) return;
  for (const [k, child] of Object.entries(shape)) if (json.properties[k]) restoreDefaults(child, json.properties[k]);
}

/** The schema as zod emits it, formats included (the docs' field reference reads them). */
export function jsonSchemaObject(): Record<string, unknown> {
  const schema = z.toJSONSchema(Config, { io: "input", unrepresentable: "any", target: "draft-7" }) as Record<string, unknown>;
  restoreDefaults(Config as unknown as ZodNode, schema as JsonNode);
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    $id: "https://otoroshi-lite.local/otoroshi.schema.json",
    title: "otoroshi-lite configuration (otoroshi.yaml)",
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== "$schema")),
  };
}

function withoutFormats(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutFormats);
  if (node === null || typeof node !== "object") return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) if (k !== "format") out[k] = withoutFormats(v);
  const format = (node as { format?: unknown }).format;
  if (typeof format === "string" && out.type === "string" && out.pattern === undefined) {
    const pattern = FORMAT_PATTERNS[format];
    if (pattern === undefined) throw new Error(`json-schema.ts: no pattern for format "${format}": add one to FORMAT_PATTERNS`);
    out.pattern = pattern;
  }
  return out;
}

export function jsonSchemaText(): string {
  return JSON.stringify(withoutFormats(jsonSchemaObject()), null, 2) + "\n";
}
