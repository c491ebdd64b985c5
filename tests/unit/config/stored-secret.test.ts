// Stored secrets (issue 8, item 7): a "sha256:" value must be the prefix and exactly 64 hex
// digits, or validation refuses it with file:line:col; and the secret matcher never throws,
// whatever it is given (a malformed hash once made every call of its client id a 500).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { parseConfig } from "../../../src/config/parse.ts";
import { ConfigError, formatProblem } from "../../../src/errors.ts";
import { compileSecret, hashSecret, safeEqual, secretDigest } from "../../../src/plugins/secrets.ts";

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, "f.yaml", { env: {} });
    return [];
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    return e.problems.map(formatProblem);
  }
}

const MESSAGE = 'a hashed secret is "sha256:" followed by exactly 64 hex digits (as `otoroshi-lite hash-secret` prints it)';
const hex = (n: number) => "0123456789abcdef".repeat(8).slice(0, n);

describe("stored secrets", () => {
  test("sha256: with anything but exactly 64 hex digits is refused, for clientSecret and previous secrets", () => {
    for (const bad of ["sha256:", `sha256:${hex(63)}`, `sha256:${hex(65)}`, `sha256:${hex(62)}zz`, `sha256: ${hex(64)}`, `sha256:${hex(64)}\\n`]) {
      expect(problems(`apikeys:\n  - clientId: a\n    clientSecret: "${bad}"\n`)).toEqual([`f.yaml:3:19 apikeys[0].clientSecret: ${MESSAGE}`]);
      expect(problems(`apikeys:\n  - clientId: a\n    clientSecret: s\n    previousSecrets:\n      - { secret: "${bad}", validUntil: 0 }\n`)).toEqual([
        `f.yaml:5:19 apikeys[0].previousSecrets[0].secret: ${MESSAGE}`,
      ]);
    }
  });

  test("64 hex digits in either case, and plain secrets (even ones that mention sha256), are accepted", () => {
    for (const ok of [`sha256:${hex(64)}`, `sha256:${hex(64).toUpperCase()}`, "SHA256:abc", "x-sha256:abc", "sha256", "a"]) {
      expect(problems(`apikeys:\n  - clientId: a\n    clientSecret: "${ok}"\n`)).toEqual([]);
    }
  });

  test("a hashed secret matches the secret it is the hash of, whatever the case of its hex digits", () => {
    const stored = hashSecret("s3cret");
    expect(compileSecret(stored)("s3cret")).toBe(true);
    expect(compileSecret(stored.toUpperCase().replace("SHA256:", "sha256:"))("s3cret")).toBe(true);
    expect(compileSecret(stored)("other")).toBe(false);
  });

  test("the matcher never throws and a malformed hash matches nothing (property)", () => {
    const stored = fc.oneof(
      fc.string(),
      fc.string({ unit: "binary" }),
      fc.tuple(fc.constant("sha256:"), fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEFxyz "), maxLength: 80 })).map(([p, h]) => p + h),
    );
    fc.assert(
      fc.property(stored, fc.oneof(fc.string(), fc.string({ unit: "binary" })), (s, presented) => {
        expect(secretDigest(s).length).toBe(32);
        const match = compileSecret(s);
        const ok = match(presented);
        if (s.startsWith("sha256:") && !/^sha256:[0-9a-fA-F]{64}$/.test(s)) expect(ok).toBe(false);
        expect(typeof safeEqual(s, presented)).toBe("boolean");
      }),
      { numRuns: 2000 },
    );
  });
});
