// server.maxConfigSize at start and in `check` (issue 8, item 4): the file's size is checked
// before it is parsed, against the default or the larger value the file declares for itself in
// its block-style server mapping; after the parse the file must fit its own declared value.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { declaredMaxConfigSize, loadParsed, readConfigBytes } from "../../../src/config/load.ts";
import { DEFAULT_MAX_CONFIG_SIZE } from "../../../src/config/schema.ts";
import { ConfigError, formatProblem } from "../../../src/errors.ts";

const dir = mkdtempSync(join(tmpdir(), "oto-size-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const route = "routes:\n  - id: r\n    frontend: { domains: [a.test] }\n    backend: { targets: [{ hostname: 127.0.0.1, port: 9 }] }\n";
/** A valid config padded by a comment to `size` bytes (a comment costs the parser little). */
function padded(head: string, size: number): string {
  const body = head + route + "#";
  return body + "x".repeat(size - body.length - 1) + "\n";
}

function problems(file: string): string[] {
  try {
    loadParsed(file, {});
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map(formatProblem);
  }
}

describe("server.maxConfigSize at start and in check", () => {
  test("the value declared in the block-style server mapping is found before the parse", () => {
    expect(declaredMaxConfigSize("server:\n  port: 80\n  maxConfigSize: 33554432\nroutes: []\n")).toBe(33554432);
    expect(declaredMaxConfigSize("# c\nserver:   # comment\n\n  maxConfigSize: 1024  # small\n")).toBe(1024);
    // Not in the server mapping, nested deeper, flow style, or after it ended: not found.
    expect(declaredMaxConfigSize("routes:\n  maxConfigSize: 33554432\n")).toBeUndefined();
    expect(declaredMaxConfigSize("server:\n  failedAuth:\n    maxConfigSize: 33554432\n")).toBeUndefined();
    expect(declaredMaxConfigSize("server: { maxConfigSize: 33554432 }\n")).toBeUndefined();
    expect(declaredMaxConfigSize("server:\n  port: 80\nmaxConfigSize: 33554432\n")).toBeUndefined();
  });

  test("a file over the default is refused at 1:1 before it is parsed", () => {
    const file = join(dir, "over.yaml");
    const size = DEFAULT_MAX_CONFIG_SIZE + 10;
    writeFileSync(file, padded("", size));
    expect(problems(file)).toEqual([`${file}:1:1: the file is 16 MiB (${size} bytes), more than server.maxConfigSize (16 MiB (16777216 bytes)); it was not parsed`]);
  });

  test("a file that declares a larger limit for itself starts", () => {
    const file = join(dir, "declared.yaml");
    writeFileSync(file, padded("server:\n  maxConfigSize: 33554432\n", DEFAULT_MAX_CONFIG_SIZE + 4096));
    expect(loadParsed(file, {}).config.server.maxConfigSize).toBe(33554432);
  });

  test("a declared limit in flow style is only seen after the parse: the default applies before it", () => {
    const file = join(dir, "flow.yaml");
    writeFileSync(file, padded("server: { maxConfigSize: 33554432 }\n", DEFAULT_MAX_CONFIG_SIZE + 4096));
    expect(problems(file)[0]).toMatch(/:1:1: the file is 16 MiB \(\d+ bytes\), more than server\.maxConfigSize \(16 MiB \(16777216 bytes\)\); it was not parsed$/);
  });

  test("a reload's limit is the one it is given (the running value); a file that grew past it is refused", () => {
    const file = join(dir, "reload.yaml");
    writeFileSync(file, padded("", 5000));
    expect(readConfigBytes(file, 5000).length).toBe(5000);
    expect(() => readConfigBytes(file, 4999)).toThrow("the file is 5000 bytes, more than server.maxConfigSize (4999 bytes); it was not parsed");
  });

  test("a directory or a missing file is a problem at 1:1, not an exception", () => {
    expect(problems(dir)).toEqual([`${dir}:1:1: cannot read the file (EISDIR)`]);
    expect(problems(join(dir, "missing.yaml"))).toEqual([`${join(dir, "missing.yaml")}:1:1: file not found`]);
  });
});
