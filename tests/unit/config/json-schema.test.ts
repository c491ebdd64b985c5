import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { jsonSchemaText } from "../../../src/config/json-schema.ts";

const root = join(import.meta.dir, "../../..");

test("the committed otoroshi.schema.json matches the zod schema (run `npm run schema` if not)", () => {
  expect(readFileSync(join(root, "otoroshi.schema.json"), "utf8")).toBe(jsonSchemaText());
});

test("the bundled otoroshi.yaml points editors at the schema", () => {
  const text = readFileSync(join(root, "otoroshi.yaml"), "utf8");
  expect(text.split("\n")[0]).toBe("# yaml-language-server: $schema=./otoroshi.schema.json");
  expect(parse(text)).toHaveProperty("routes");
});

test("the schema rejects unknown keys so editors flag typos", () => {
  const schema = JSON.parse(jsonSchemaText()) as { additionalProperties?: boolean; properties: Record<string, { additionalProperties?: boolean }> };
  expect(schema.additionalProperties).toBe(false);
  expect(schema.properties.server.additionalProperties).toBe(false);
});

test("docs/configuration.md carries the generated field reference (run `npm run schema` if not)", async () => {
  const { withReference } = await import("../../../src/config/config-docs.ts");
  const doc = readFileSync(join(root, "docs/configuration.md"), "utf8");
  expect(doc).toBe(withReference(doc));
  expect(doc).toContain("`clientSecret`");
});
