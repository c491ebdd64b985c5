import { describe, expect, test } from "bun:test";
import { CHALLENGE_PREFIX, ChallengeStore } from "../../../src/tls/acme/challenges.ts";

describe("HTTP-01 challenge answers", () => {
  const store = new ChallengeStore();
  store.set("tok_EN-1", "tok_EN-1.thumbprint");

  test("a pending token gets its key authorization as text/plain", async () => {
    const res = store.answer("GET", CHALLENGE_PREFIX + "tok_EN-1");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(await res.text()).toBe("tok_EN-1.thumbprint");
    const head = store.answer("HEAD", CHALLENGE_PREFIX + "tok_EN-1");
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String("tok_EN-1.thumbprint".length));
  });
  test("unknown, malformed or removed tokens are a 404 in the Otoroshi error shape", async () => {
    for (const path of ["nope", "", "tok_EN-1/x", "..%2f", "a".repeat(300)]) {
      const res = store.answer("GET", CHALLENGE_PREFIX + path);
      expect(res.status).toBe(404);
      expect(res.headers.get("otoroshi-error")).toBe("true");
      expect(Object.keys(await res.json())).toEqual(["Otoroshi-Error"]);
    }
    const s = new ChallengeStore();
    s.set("t", "t.x");
    s.delete("t");
    expect(s.answer("GET", CHALLENGE_PREFIX + "t").status).toBe(404);
  });
  test("other methods are refused", () => {
    expect(store.answer("POST", CHALLENGE_PREFIX + "tok_EN-1").status).toBe(405);
  });
});
