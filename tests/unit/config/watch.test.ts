import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ConfigWatcher, watchConfig, type WatchOptions } from "../../../src/config/watch.ts";
import { setLogSink } from "../../../src/log.ts";

// fs.watch tests set the poll far out (60 s) so a pass proves the directory watcher.
const BLIND_POLL = 60_000;
const cleanups: (() => void)[] = [];

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "oto-watch-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts a watcher that records its triggers; `next()` resolves on the next one (≤ 3 s). */
function record(opts: Omit<WatchOptions, "onChange">) {
  const triggers: string[] = [];
  let wake: (() => void) | null = null;
  const watcher: ConfigWatcher = watchConfig({
    debounceMs: 30,
    pollIntervalMs: BLIND_POLL,
    ...opts,
    onChange: (t) => {
      triggers.push(t);
      wake?.();
    },
  });
  cleanups.unshift(() => watcher.close());
  const next = (timeoutMs = 3000) => {
    const seen = triggers.length;
    return new Promise<string | null>((res) => {
      const done = () => {
        clearTimeout(timer);
        wake = null;
        res(triggers[seen] ?? null);
      };
      const timer = setTimeout(done, timeoutMs);
      wake = () => triggers.length > seen && done();
    });
  };
  return { watcher, triggers, next };
}

/** Gives the freshly created watcher a moment to be armed before the change. */
const settle = () => Bun.sleep(50);

describe("watchConfig", () => {
  test("notices an in-place write", async () => {
    const dir = tempDir();
    const file = join(dir, "otoroshi.yaml");
    writeFileSync(file, "a: 1\n");
    const { next } = record({ file });
    await settle();
    const fired = next();
    writeFileSync(file, "a: 2\n");
    expect(await fired).toBe("watch:otoroshi.yaml");
  });

  test("notices an editor save by rename over the file", async () => {
    const dir = tempDir();
    const file = join(dir, "otoroshi.yaml");
    writeFileSync(file, "a: 1\n");
    const { next } = record({ file });
    await settle();
    const fired = next();
    writeFileSync(join(dir, ".otoroshi.yaml.swp"), "a: 2\n");
    renameSync(join(dir, ".otoroshi.yaml.swp"), file);
    expect(await fired).toBe("watch:otoroshi.yaml");
  });

  test("notices mv new.yaml otoroshi.yaml", async () => {
    const dir = tempDir();
    const file = join(dir, "otoroshi.yaml");
    writeFileSync(file, "a: 1\n");
    writeFileSync(join(dir, "new.yaml"), "a: 22\n");
    const { next } = record({ file });
    await settle();
    const fired = next();
    renameSync(join(dir, "new.yaml"), file);
    expect(await fired).toBe("watch:otoroshi.yaml");
  });

  test("notices a Kubernetes ConfigMap symlink swap", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "..2026_a"));
    writeFileSync(join(dir, "..2026_a", "otoroshi.yaml"), "a: 1\n");
    symlinkSync("..2026_a", join(dir, "..data"));
    symlinkSync("..data/otoroshi.yaml", join(dir, "otoroshi.yaml"));
    const { next, triggers } = record({ file: join(dir, "otoroshi.yaml") });
    await settle();
    const fired = next();
    // What the kubelet does: new dir, temp link, rename the link over ..data, drop the old dir.
    mkdirSync(join(dir, "..2026_b"));
    writeFileSync(join(dir, "..2026_b", "otoroshi.yaml"), "a: 2\n");
    symlinkSync("..2026_b", join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    // Awaited before the old directory goes, so the swap itself is what is noticed.
    expect(await fired).toBe("watch:otoroshi.yaml");
    rmSync(join(dir, "..2026_a"), { recursive: true });
    // After the swap the new target directory is watched: an in-place write there is seen.
    await Bun.sleep(100);
    const again = next();
    writeFileSync(join(dir, "..2026_b", "otoroshi.yaml"), "a: 3\n");
    expect(await again).toBe("watch:otoroshi.yaml");
    expect(triggers.length).toBeLessThanOrEqual(3); // the old directory's removal may add one
  });

  test("notices a change to an extra file in another directory", async () => {
    const dir = tempDir();
    const secrets = tempDir();
    const file = join(dir, "otoroshi.yaml");
    const secret = join(secrets, "secret.pem");
    writeFileSync(file, "a: 1\n");
    writeFileSync(secret, "s1");
    const { watcher, next } = record({ file });
    watcher.setExtraFiles([secret]);
    await settle();
    const fired = next();
    writeFileSync(secret, "s2");
    expect(await fired).toBe("watch:secret.pem");
  });

  test("notices a file deleted then recreated", async () => {
    const dir = tempDir();
    const file = join(dir, "otoroshi.yaml");
    writeFileSync(file, "a: 1\n");
    const { next } = record({ file });
    await settle();
    const deleted = next();
    unlinkSync(file);
    expect(await deleted).toBe("watch:otoroshi.yaml");
    const recreated = next();
    writeFileSync(file, "a: 2\n");
    expect(await recreated).toBe("watch:otoroshi.yaml");
  });

  test("collapses a burst of writes into one callback", async () => {
    const dir = tempDir();
    const file = join(dir, "otoroshi.yaml");
    writeFileSync(file, "a: 0\n");
    const { next, triggers } = record({ file, debounceMs: 150 });
    await settle();
    const fired = next();
    for (let i = 1; i <= 5; i++) writeFileSync(file, `a: ${i}\n`);
    expect(await fired).toBe("watch:otoroshi.yaml");
    await Bun.sleep(300);
    expect(triggers).toEqual(["watch:otoroshi.yaml"]);
  });

  test("ignores unrelated files in the same directory", async () => {
    const dir = tempDir();
    const file = join(dir, "otoroshi.yaml");
    writeFileSync(file, "a: 1\n");
    const { next } = record({ file });
    await settle();
    const fired = next(500);
    writeFileSync(join(dir, "notes.txt"), "unrelated");
    expect(await fired).toBeNull();
  });

  test("the poll alone catches a change when fs.watch is blind", async () => {
    const dir = tempDir();
    const file = join(dir, "otoroshi.yaml");
    writeFileSync(file, "a: 1\n");
    const { next } = record({ file, disableFsWatch: true, pollIntervalMs: 100 });
    const fired = next();
    writeFileSync(file, "a: 22\n");
    expect(await fired).toBe("poll:otoroshi.yaml");
  });

  test("a throwing callback does not break the watcher, and close stops it", async () => {
    const dir = tempDir();
    const file = join(dir, "otoroshi.yaml");
    writeFileSync(file, "a: 1\n");
    let calls = 0;
    const logged: string[] = [];
    setLogSink((line) => logged.push(line));
    cleanups.push(() => setLogSink((line) => process.stderr.write(line + "\n")));
    const watcher = watchConfig({
      file,
      debounceMs: 20,
      pollIntervalMs: 100,
      onChange: () => {
        calls++;
        throw new Error("boom");
      },
    });
    cleanups.unshift(() => watcher.close());
    await settle();
    writeFileSync(file, "a: 2\n");
    for (let i = 0; i < 300 && calls === 0; i++) await Bun.sleep(10);
    expect(calls).toBe(1);
    writeFileSync(file, "a: 33\n");
    for (let i = 0; i < 300 && calls === 1; i++) await Bun.sleep(10);
    expect(calls).toBe(2);
    watcher.close();
    writeFileSync(file, "a: 444\n");
    await Bun.sleep(300);
    expect(calls).toBe(2);
    expect(logged.filter((l) => l.includes("config.watch_error"))).toHaveLength(2);
  });
});
