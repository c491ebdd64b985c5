import { main } from "../main.ts";
import { runtime } from "../runtime/deno.ts";

runtime.exit(await main(runtime));
