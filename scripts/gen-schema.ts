// Writes otoroshi.schema.json and the field reference of docs/configuration.md from the zod
// schema (the single source of truth). `--check` exits 1 when a committed file is stale.
import { readFileSync, writeFileSync } from "node:fs";
import { withReference } from "../src/config/config-docs.ts";
import { jsonSchemaText } from "../src/config/json-schema.ts";

const root = new URL("..", import.meta.url).pathname;
const targets: [string, (current: string) => string][] = [
  [`${root}otoroshi.schema.json`, () => jsonSchemaText()],
  [`${root}docs/configuration.md`, (current) => withReference(current)],
];
let stale = 0;
for (const [path, make] of targets) {
  let current = "";
  try {
    current = readFileSync(path, "utf8");
  } catch {
    // No file yet: everything is new.
  }
  const next = make(current);
  if (process.argv.includes("--check")) {
    if (next !== current) {
      console.error(`${path} is out of date: run \`npm run schema\``);
      stale++;
    }
  } else if (next !== current) {
    writeFileSync(path, next);
    console.log(`wrote ${path}`);
  }
}
if (stale) process.exit(1);
if (process.argv.includes("--check")) console.log("schema and docs/configuration.md are up to date");
