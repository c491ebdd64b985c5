// Time from process start to the first served request, over several runs.
//   bun bench/startup.ts --runs 10 --url http://127.0.0.1:PORT/path -- CMD ARGS...
// Each run spawns CMD, polls URL every millisecond until it answers 200 (the whole path
// served: listener, router, proxy, backend), records the elapsed ms, then stops the process by
// its PID (SIGTERM, SIGKILL after 5 s) and waits for it. Prints one JSON line.
const argv = process.argv.slice(2);
const sep = argv.indexOf("--");
if (sep < 0 || sep === argv.length - 1) throw new Error("usage: startup.ts --runs N --url URL -- CMD ARGS...");
const opts = argv.slice(0, sep);
const cmd = argv.slice(sep + 1);
const opt = (name: string, fallback: string) => {
  const i = opts.indexOf(`--${name}`);
  return i >= 0 ? opts[i + 1]! : fallback;
};
const runs = Number(opt("runs", "10"));
const url = opt("url", "");
const limitMs = Number(opt("timeout-ms", "20000"));
if (!url) throw new Error("--url is required");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function once(): Promise<number> {
  const t0 = performance.now();
  const proc = Bun.spawn(cmd, { stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  try {
    while (performance.now() - t0 < limitMs) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        if (res.status === 200) return performance.now() - t0;
      } catch {
        // not listening yet
      }
      if (proc.exitCode !== null) throw new Error(`${cmd[0]} exited with ${proc.exitCode} before answering`);
      await sleep(1);
    }
    throw new Error(`no answer from ${url} within ${limitMs} ms`);
  } finally {
    proc.kill("SIGTERM");
    const killer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await proc.exited;
    clearTimeout(killer);
  }
}

const times: number[] = [];
for (let i = 0; i < runs; i++) times.push(await once());
const sorted = [...times].sort((a, b) => a - b);
const mid = sorted.length >> 1;
const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
const r = (x: number) => Math.round(x);
console.log(JSON.stringify({ runs, median: r(median), min: r(sorted[0]!), max: r(sorted[sorted.length - 1]!), times: times.map(r) }));

// A module (not a global script), so its top-level names and await stay its own under tsc.
export {};
