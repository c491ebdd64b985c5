import { main } from "../main.ts";
import { runtime } from "../runtime/bun.ts";

runtime.exit(await main(runtime));
