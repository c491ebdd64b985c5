import { parseArgs } from "../cli.ts";
import { log } from "../log.ts";
import { main } from "../main.ts";
import { runtime } from "../runtime/bun.ts";

// Bun's fetch sends at most BUN_CONFIG_MAX_HTTP_REQUESTS requests at once over the whole process
// (default 256) and queues the rest, all backends together: 256 calls held by one slow backend
// made every other route wait (issue 8 item 3). Bun reads the variable once, from the
// environment it was started with; setting process.env (or libc setenv) before the first fetch
// changes nothing (measured, Bun 1.4.5, from sources and compiled). So a gateway started without
// it replaces itself (execve: same PID, same stdio) with the variable at Bun's maximum, 65,535,
// and the gateway's own limits (server.maxUpstreamRequests, backend.client.maxConnections) decide
// instead, answering 503 rather than queueing behind another backend. An operator's own value is
// kept (docs/operations.md, "Backend connection limits").
const MAX_HTTP_REQUESTS = "65535";

function serving(): boolean {
  try {
    return parseArgs(runtime.args).command === "serve";
  } catch {
    return false; // main() reports the usage error
  }
}

if (process.env.BUN_CONFIG_MAX_HTTP_REQUESTS === undefined && serving()) {
  // A compiled binary's argv[1] is its virtual /$bunfs/ entry point, not an argument.
  const compiled = Bun.main.startsWith("/$bunfs/");
  const argv = compiled ? [process.execPath, ...runtime.args] : [process.execPath, ...process.execArgv, process.argv[1]!, ...runtime.args];
  try {
    if (typeof process.execve !== "function") throw new Error("process.execve is missing");
    process.execve(process.execPath, argv, { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: MAX_HTTP_REQUESTS });
  } catch (e) {
    // Not fatal: the gateway's limits still apply, with Bun's default queue behind them.
    log("warn", "runtime.upstream_limit", { message: "could not raise BUN_CONFIG_MAX_HTTP_REQUESTS; set it in the environment", cause: e instanceof Error ? e.message : String(e) });
  }
}

// main() returns the exit code; the process ends only through runtime.exit.
main(runtime).then(
  (code) => runtime.exit(code),
  (e: unknown) => {
    process.stderr.write(`otoroshi-lite: fatal: ${e instanceof Error ? e.message : String(e)}\n`);
    runtime.exit(70);
  },
);
