// JSON Schema for editors (yaml-language-server), generated from the zod schema.
import { z } from "zod";
import { Config } from "./schema.ts";

export function jsonSchemaText(): string {
  const schema = z.toJSONSchema(Config, { io: "input", unrepresentable: "any", target: "draft-7" }) as Record<string, unknown>;
  const doc = {
    $schema: "http://json-schema.org/draft-07/schema#",
    $id: "https://otoroshi-lite.local/otoroshi.schema.json",
    title: "otoroshi-lite configuration (otoroshi.yaml)",
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== "$schema")),
  };
  return JSON.stringify(doc, null, 2) + "\n";
}
