// The member names of a JSON object as written, repeats included. JSON.parse keeps the last of
// two members with one name (RFC 8259 §4 leaves it to the parser), and RFC 6749 §3.1/§3.2
// forbids sending a request parameter twice: `{"client_id":"ghost","client_id":"my-id"}` must be
// refused, not read as one of them.
//
// Runs only on text JSON.parse has already accepted, so the grammar is known to hold and the
// scanner only has to find where each top-level member starts and ends: it never recurses (a
// nested value is skipped by counting brackets outside strings) and every loop advances through
// a text the caller has already capped in size.

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function skipSpace(s: string, i: number): number {
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return i;
}

/** `i` is at an opening quote; returns the index just past the closing one. */
function stringEnd(s: string, i: number): number {
  for (i++; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === QUOTE) return i + 1;
  }
  return s.length;
}

/** `i` is at the first character of a value; returns the index just past it. */
function valueEnd(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === QUOTE) return stringEnd(s, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    while (i < s.length) {
      const d = s.charCodeAt(i);
      if (d === QUOTE) {
        i = stringEnd(s, i);
        continue;
      }
      if (d === 0x7b || d === 0x5b) depth++;
      else if ((d === 0x7d || d === 0x5d) && --depth === 0) return i + 1;
      i++;
    }
    return s.length;
  }
  // number, true, false, null: up to the next delimiter
  while (i < s.length) {
    const d = s.charCodeAt(i);
    if (d === 0x2c || d === 0x7d || d === 0x5d || isSpace(d)) break;
    i++;
  }
  return i;
}

/**
 * The first member name that occurs twice in the top-level object of `text` (compared after
 * unescaping: `"client\u005fid"` is `client_id`), or null. `text` must be a JSON object that
 * JSON.parse accepted.
 */
export function repeatedMember(text: string): string | null {
  const seen = new Set<string>();
  let i = skipSpace(text, 0) + 1; // past '{'
  while (i < text.length) {
    i = skipSpace(text, i);
    if (text.charCodeAt(i) !== QUOTE) break; // '}' of an empty object
    const end = stringEnd(text, i);
    const raw = text.slice(i + 1, end - 1);
    const name = raw.includes("\\") ? (JSON.parse(text.slice(i, end)) as string) : raw;
    if (seen.has(name)) return name;
    seen.add(name);
    i = skipSpace(text, end) + 1; // past ':'
    i = valueEnd(text, skipSpace(text, i));
    i = skipSpace(text, i);
    if (text.charCodeAt(i) !== 0x2c) break; // '}' ends the object
    i++;
  }
  return null;
}
