// Issue 8 item 11: a JSON member given twice at the token or introspection endpoint is refused
// like a repeated form parameter (RFC 6749 §3.1/§3.2), whatever its spelling.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { repeatedMember } from "../../../src/plugins/client-credentials/json-members.ts";
import { build, expectError, INTROSPECT_URL, json, send, TOKEN_URL, tokenFor } from "./harness.ts";

const { svc } = build();

/** One spelling of `name` as a JSON string: each code unit either as is or as \uXXXX. */
function spell(name: string, escapes: boolean[]): string {
  let out = '"';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    out += escapes[i % escapes.length] ? `\\u${c.toString(16).padStart(4, "0")}` : JSON.stringify(name[i]).slice(1, -1);
  }
  return out + '"';
}

const ws = fc.constantFrom("", " ", "\n", "\t ", "\r\n  ");

describe("repeatedMember", () => {
  test("finds a repeated name, compared after unescaping", () => {
    expect(repeatedMember('{"client_id":"ghost","client_id":"my-id"}')).toBe("client_id");
    expect(repeatedMember('{"client_id":"ghost","client\\u005fid":"my-id"}')).toBe("client_id");
    expect(repeatedMember('{"\\u0063lient_id":"a", "x": 1, "client_id":null}')).toBe("client_id");
    expect(repeatedMember('{ "a" : {"b": 1, "b": 2} , "c": [ "a", {"a": "}"} ], "a": "x" }')).toBe("a");
  });

  test("names inside nested values or string values are not members", () => {
    expect(repeatedMember('{"a":{"a":1},"b":["a","b",{"b":"\\"}"}],"c":"\\"a\\":1"}')).toBe(null);
    expect(repeatedMember("{}")).toBe(null);
    expect(repeatedMember(" {\n}\n")).toBe(null);
    expect(repeatedMember('{"a":true,"b":false,"c":null,"d":-1.5e+3}')).toBe(null);
  });

  test("property: null for any object with distinct names, the name for any repeat", () => {
    const member = fc.tuple(fc.string({ maxLength: 12, unit: "binary" }), fc.jsonValue({ maxDepth: 3 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), ws, ws);
    fc.assert(
      fc.property(
        fc.uniqueArray(member, { selector: (m) => m[0], maxLength: 8 }),
        fc.nat(),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        ws,
        (members, pick, escapes, indent, outer) => {
          const text = (ms: typeof members) => `${outer}{${ms.map(([n, v, e, a, b]) => `${a}${spell(n, e)}${b}:${a}${JSON.stringify(v, null, indent ? 2 : undefined)}${b}`).join(",")}}${outer}`;
          const distinct = text(members);
          expect(Object.keys(JSON.parse(distinct) as object).length).toBe(members.length);
          expect(repeatedMember(distinct)).toBe(null);
          if (members.length === 0) return;
          // The same name again, spelled another way, anywhere in the object.
          const [name, value] = members[pick % members.length]!;
          const again: (typeof members)[number] = [name, value, escapes, "", " "];
          const at = pick % (members.length + 1);
          const twice = text([...members.slice(0, at), again, ...members.slice(at)]);
          JSON.parse(twice); // still valid JSON: the last one would silently win
          expect(repeatedMember(twice)).toBe(name);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("token and introspection endpoints", () => {
  test("a repeated client_id in a JSON body gets 400 invalid_request, however it is spelled", async () => {
    for (
      const body of [
        '{"grant_type":"client_credentials","client_id":"ghost","client_id":"my-id","client_secret":"my-secret"}',
        '{"grant_type":"client_credentials","client_id":"my-id","client\\u005fid":"my-id","client_secret":"my-secret"}',
        '{"grant_type":"client_credentials","client_id":"my-id","client_secret":"my-secret","client_id":null}',
      ]
    ) {
      await expectError(await send(svc, json(TOKEN_URL, body)), 400, "invalid_request", "parameter 'client_id' is repeated");
    }
    await expectError(
      await send(svc, json(TOKEN_URL, '{"grant_type":"client_credentials","client_id":"my-id","client_secret":"my-secret","grant_type":"client_credentials"}')),
      400,
      "invalid_request",
      "parameter 'grant_type' is repeated",
    );
  });

  test("the same body without the repeat is served", async () => {
    const res = await send(svc, json(TOKEN_URL, '{"grant_type":"client_credentials","client\\u005fid":"my-id","client_secret":"my-secret"}'));
    expect(res.status).toBe(200);
  });

  test("introspection refuses a repeated token or credential", async () => {
    const token = await tokenFor(svc, "my-id", "my-secret");
    const body = (extra: string) => `{"client_id":"noscope","client_secret":"noscope-secret","token":${JSON.stringify(token)}${extra}}`;
    expect((await send(svc, json(INTROSPECT_URL, body("")))).status).toBe(200);
    await expectError(await send(svc, json(INTROSPECT_URL, body(',"token":"x"'))), 400, "invalid_request", "parameter 'token' is repeated");
    await expectError(await send(svc, json(INTROSPECT_URL, body(',"client_secret":"noscope-secret"'))), 400, "invalid_request", "parameter 'client_secret' is repeated");
  });
});
