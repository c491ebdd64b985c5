import { main } from "../main.ts";
import { runtime } from "../runtime/deno.ts";

// main() returns the exit code; the process ends only through runtime.exit.
main(runtime).then(
  (code) => runtime.exit(code),
  (e: unknown) => {
    process.stderr.write(`otoroshi-lite: fatal: ${e instanceof Error ? e.message : String(e)}\n`);
    runtime.exit(70);
  },
);
