// The differential corpus on Deno (run by jwt-differential.test.ts as `deno run -A`): Deno's
// node:crypto is its own implementation, and the gateway runs on it too. Prints one JSON line:
// {cases, mismatches, fetched}. Run by hand: ./node_modules/.bin/deno run -A tests/unit/keys/jwt-differential-deno.ts
import http from "node:http";
import { buildCorpus, gatewayVerifier, joseVerifier, loadKeys, mismatches, publishedJwks } from "./jwt-corpus.ts";

let fetched = 0;
const server = http.createServer((_req, res) => {
  fetched++;
  res.end("{}");
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const { port } = server.address() as { port: number };
const keys = loadKeys();
const corpus = buildCorpus(keys, `http://127.0.0.1:${port}/jwks.json`);
const wrong = await mismatches(corpus, gatewayVerifier(keys), joseVerifier(publishedJwks(keys)));
server.close();
console.log(JSON.stringify({ cases: corpus.length, mismatches: wrong, fetched }));
