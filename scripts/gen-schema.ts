// Writes otoroshi.schema.json from the zod schema (the single source of truth).
// `bun scripts/gen-schema.ts --check` exits 1 when the committed file is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { jsonSchemaText } from "../src/config/json-schema.ts";

const path = new URL("../otoroshi.schema.json", import.meta.url).pathname;
const text = jsonSchemaText();
if (process.argv.includes("--check")) {
  let current = "";
  try {
    current = readFileSync(path, "utf8");
  } catch {}
  if (current !== text) {
    console.error("otoroshi.schema.json is out of date: run `npm run schema`");
    process.exit(1);
  }
  console.log("otoroshi.schema.json is up to date");
} else {
  writeFileSync(path, text);
  console.log(`wrote ${path}`);
}
