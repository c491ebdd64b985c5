// The standard process_* families every Prometheus client library exports, so the usual
// dashboards work. Linux's /proc/self is read where it exists (open descriptors, the kernel's
// own figures); process.memoryUsage() and cpuUsage() otherwise.
import { readdirSync } from "node:fs";

const startSeconds = Math.round((Date.now() - process.uptime() * 1000) / 10) / 100;

function openFds(): number | null {
  try {
    // The listing itself holds one descriptor while it runs.
    return readdirSync("/proc/self/fd").length - 1;
  } catch {
    return null;
  }
}

export function processMetrics(): string {
  const cpu = process.cpuUsage();
  let text = "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\n" +
    `process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}\n` +
    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n" +
    `process_resident_memory_bytes ${process.memoryUsage().rss}\n` +
    "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\n" +
    `process_start_time_seconds ${startSeconds}\n`;
  const fds = openFds();
  if (fds !== null) text += `# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds ${fds}\n`;
  return text;
}
