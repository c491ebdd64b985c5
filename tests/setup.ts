// Preloaded by `bun test` (bunfig.toml). With OTOROSHI_LOG_DIR set (scripts/test.sh sets it),
// every log line of the in-process gateways — whatever sink or level a test chooses — is kept
// in $OTOROSHI_LOG_DIR/inprocess-<pid>.log for scripts/scan-logs.ts, which checks that no
// secret or token the suite used appears in any of them.
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { addLogTap } from "../src/log.ts";
import { setAccessLogSink } from "../src/monitoring/access-log.ts";

const dir = process.env.OTOROSHI_LOG_DIR;
if (dir) {
  const file = join(dir, `inprocess-${process.pid}.log`);
  addLogTap((line) => appendFileSync(file, line + "\n"), { level: "debug" });
  // The in-process gateways' access lines are scanned too.
  setAccessLogSink((line) => appendFileSync(file, line + "\n"));
}
