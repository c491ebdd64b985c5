import { describe, expect, test } from "bun:test";
import Ajv from "ajv";
import { readdirSync, readFileSync } from "node:fs";
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

// ---------------------------------------------------------------- ajv, strict (issue 8, item 16)

describe("the JSON Schema under ajv's default strict mode", () => {
  // `strict: true` turns every strict option into an error: unknown keywords and formats,
  // ambiguous types, tuples and required properties.
  const schema = JSON.parse(readFileSync(join(root, "otoroshi.schema.json"), "utf8")) as Record<string, unknown>;
  const validate = new Ajv({ strict: true, allErrors: true }).compile(schema);
  const errors = () => (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join("; ");

  test("compiles (draft-07, no unknown format or keyword) and declares the draft ajv's default class reads", () => {
    expect(schema.$schema).toBe("http://json-schema.org/draft-07/schema#");
    expect(JSON.stringify(schema)).not.toContain('"format"');
  });

  test("accepts the bundled otoroshi.yaml", () => {
    const ok = validate(parse(readFileSync(join(root, "otoroshi.yaml"), "utf8")));
    expect(errors()).toBe("");
    expect(ok).toBe(true);
  });

  // Every ```yaml block of the docs is a whole config (fragments are marked ```yaml fragment).
  const docs = ["README.md", ...readdirSync(join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];
  const examples = docs.flatMap((file) => [...readFileSync(join(root, file), "utf8").matchAll(/^```yaml\n([\s\S]*?)^```/gm)].map((m) => ({ file, text: m[1]! })));

  test("the docs have YAML examples to check", () => {
    expect(examples.length).toBeGreaterThan(3);
  });

  for (const [i, ex] of examples.entries()) {
    test(`accepts ${ex.file} example #${i + 1}`, () => {
      const ok = validate(parse(ex.text));
      expect(errors()).toBe("");
      expect(ok).toBe(true);
    });
  }

  test("refuses what the gateway refuses: an unknown key, a malformed hashed secret, a port inside a hostname", () => {
    expect(validate({ server: { prot: 8080 } })).toBe(false);
    expect(validate({ apikeys: [{ clientId: "a", clientSecret: "sha256:abc" }] })).toBe(false);
    expect(validate({ apikeys: [{ clientId: "a", clientSecret: `sha256:${"a".repeat(64)}` }] })).toBe(true);
    expect(validate({ routes: [{ id: "r", frontend: { domains: ["a.test"] }, backend: { targets: [{ hostname: "127.0.0.1:80" }] } }] })).toBe(false);
  });
});
