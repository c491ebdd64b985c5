import { main } from "../main.ts";
import { runtime } from "../runtime/bun.ts";

// No top-level await: `bun build --compile --bytecode` emits CommonJS.
main(runtime).then(
  (code) => runtime.exit(code),
  (e: unknown) => {
    process.stderr.write(`otoroshi-lite: fatal: ${e instanceof Error ? e.message : String(e)}\n`);
    runtime.exit(70);
  },
);
