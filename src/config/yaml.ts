// YAML text → Document with positions, for the config pipeline (parse.ts).
//
// - Duplicate keys are found here in one pass with a Set per mapping: the yaml library's
//   `uniqueKeys: true` compares each key with every earlier one (80,000 keys: minutes).
//   Keys compare as the strings they become in the config object, so `1:` and `"1":` clash.
// - Problem messages never quote the file: the library's messages may echo source text (an
//   invalid escape echoes what follows the backslash, often a secret), so only messages known
//   to be fixed text pass through; any other gets a fixed message for its error code.
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, type Pair, parseDocument, type YAMLError, type YAMLMap } from "yaml";
import type { ConfigProblem } from "../errors.ts";

export type Path = readonly (string | number)[];

/**
 * Whether a key may be shown in a path or a message. Keys are not secret, but a typo can make
 * a value part of one: `{ clientSecret:s3cr3t }` (no space after the colon) is the key
 * "clientSecret:s3cr3t" in a flow mapping. A key with a colon, a space or a quote, or a long
 * one, is shown as "…"; the position still says where it is.
 */
export function showableKey(k: string): boolean {
  return /^[^\s:"'`\\]{1,64}$/.test(k);
}

export function pathToString(path: Path): string {
  let out = "";
  for (const p of path) {
    const seg = typeof p === "number" || showableKey(p) ? p : "…";
    out += typeof seg === "number" ? `[${seg}]` : out ? `.${seg}` : seg;
  }
  return out;
}

// The library's messages without any interpolated source text (yaml 2.x, compose/ and parse/).
const FIXED_MESSAGES: readonly RegExp[] = [
  /^All (mapping|sequence) items must start at the same column$/,
  /^Implicit keys need to be on a single line$/,
  /^Implicit keys of flow sequence pairs need to be on a single line$/,
  /^Implicit map keys need to be followed by map values$/,
  /^Nested mappings are not allowed in compact mappings$/,
  /^A block sequence may not be used as an implicit map key$/,
  /^Block collections are not allowed within flow collections$/,
  /^Block scalar values in collections must be indented$/,
  /^Block scalar lines must not be less indented than their (explicit indentation indicator|first line)$/,
  /^Block scalars with more-indented leading empty lines must use an explicit indentation indicator$/,
  /^Tabs are not allowed as indentation$/,
  /^Missing closing ['"]quote$/,
  /^Flow (sequence|map) in block collection must be sufficiently indented and end with a [\]}]$/,
  /^Flow end indicator should be more indented than parent$/,
  /^Missing (,|, or :) between flow (sequence|map) items$/,
  /^Missing space after : in flow (sequence|map)$/,
  /^Unexpected (,|empty item) in flow (sequence|map)$/,
  /^Unexpected [a-z-]+ (token|at node end)( in YAML (stream|document))?$/,
  /^Comments must be separated from other tokens by white space characters$/,
  /^Tags and anchors must be separated from the next token by white space$/,
  /^A node can have at most one (anchor|tag)$/,
  /^Sequence item without - indicator$/,
  /^Missing newline after block sequence props$/,
  /^An alias node must not specify any properties$/,
  /^(Anchor|Alias) cannot be an empty string$/,
  /^(Anchor|Alias) ending in : is ambiguous$/,
  /^The : indicator must be at most 1024 chars after the start of an implicit (block mapping|flow sequence) key$/,
  /^Source contains multiple documents; please use YAML\.parseAllDocuments\(\)$/,
];

const BY_CODE: Partial<Record<YAMLError["code"], string>> = {
  BAD_DQ_ESCAPE: "invalid escape sequence in a double-quoted string (write the value in single quotes, or escape each backslash as \\\\)",
  BAD_SCALAR_START: "a plain value cannot start with @ or `; quote the value",
  TAG_RESOLVE_FAILED: "unknown or invalid tag (values starting with ! are tags; quote the value)",
  BAD_COLLECTION_TYPE: "a tag does not fit this kind of value (values starting with ! are tags; quote the value)",
  BAD_PROP_ORDER: "anchors and tags must come after the indicator",
  BAD_DIRECTIVE: "invalid directive (lines starting with % are directives)",
  MULTIPLE_DOCS: "the file holds more than one YAML document (--- separator); a config is one document",
  RESOURCE_EXHAUSTION: "the document is nested too deeply",
  NON_STRING_KEY: "keys must be plain strings",
  KEY_OVER_1024_CHARS: "a key is longer than 1024 characters",
  TAB_AS_INDENT: "tabs are not allowed as indentation",
  BAD_INDENT: "bad indentation",
  MISSING_CHAR: "a character is missing here (a closing quote or bracket, a ':' or a ',')",
  UNEXPECTED_TOKEN: "unexpected text here",
  BLOCK_AS_IMPLICIT_KEY: "a block collection cannot be used as a key",
  BLOCK_IN_FLOW: "block collections are not allowed within flow collections",
  MULTILINE_IMPLICIT_KEY: "keys must be on a single line",
};

/** A YAML error's message, or a fixed one when it might quote the file. */
export function safeYamlMessage(e: Pick<YAMLError, "code" | "message">): string {
  const first = e.message.split("\n")[0] ?? "";
  if (FIXED_MESSAGES.some((re) => re.test(first))) return `YAML: ${first}`;
  return `YAML: ${BY_CODE[e.code] ?? "syntax error"}`;
}

export interface ParsedYaml {
  doc: Document;
  lc: LineCounter;
  problems: ConfigProblem[];
}

/** Parses YAML text; problems (syntax errors, duplicate keys) carry positions and no file text. */
export function parseYaml(text: string, file: string): ParsedYaml {
  const lc = new LineCounter();
  // uniqueKeys: false — duplicates are found below in linear time.
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false, strict: true, merge: false });
  const problems: ConfigProblem[] = [];
  for (const e of doc.errors) {
    const at = e.linePos?.[0] ?? (e.pos ? lc.linePos(e.pos[0]) : { line: 1, col: 1 });
    problems.push({ file, line: at.line, column: at.col, path: "", message: safeYamlMessage(e) });
  }
  if (!problems.length) problems.push(...duplicateKeys(doc, lc, file));
  return { doc, lc, problems };
}

/** Scalar key → the property name it becomes in the config object; null for other keys. */
function keyName(key: unknown): string | null {
  return isScalar(key) ? String(key.value) : null;
}

function duplicateKeys(doc: Document, lc: LineCounter, file: string): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  // An explicit stack: a deeply nested file must not overflow the call stack here.
  const stack: { node: unknown; path: Path }[] = [{ node: doc.contents, path: [] }];
  while (stack.length) {
    const { node, path } = stack.pop()!;
    if (isMap(node)) {
      const first = new Map<string, Pair>();
      for (const pair of node.items) {
        const k = keyName(pair.key);
        if (k !== null) {
          const earlier = first.get(k);
          if (earlier) {
            const at = lc.linePos((pair.key as Node).range?.[0] ?? 0);
            const was = lc.linePos((earlier.key as Node).range?.[0] ?? 0);
            out.push({ file, line: at.line, column: at.col, path: pathToString([...path, k]), message: `duplicate key (first at line ${was.line}, column ${was.col})` });
            continue;
          }
          first.set(k, pair);
        }
        if (pair.value !== null && typeof pair.value === "object") stack.push({ node: pair.value, path: k === null ? path : [...path, k] });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push({ node: item, path: [...path, i] }));
    }
  }
  return out.sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Finds where a path is in the document; each mapping is indexed once, on first use. */
export class Locator {
  private readonly lc: LineCounter;
  private readonly doc: Document;
  private readonly index = new WeakMap<YAMLMap, Map<string, Pair>>();
  constructor(doc: Document, lc: LineCounter) {
    this.doc = doc;
    this.lc = lc;
  }
  private pos(offset: number | undefined): { line: number; column: number } {
    if (offset === undefined) return { line: 1, column: 1 };
    const p = this.lc.linePos(offset);
    return { line: p.line, column: p.col };
  }
  private pairOf(map: YAMLMap, key: string): Pair | undefined {
    let idx = this.index.get(map);
    if (!idx) {
      idx = new Map();
      for (const it of map.items) {
        const k = keyName(it.key);
        if (k !== null && !idx.has(k)) idx.set(k, it);
      }
      this.index.set(map, idx);
    }
    return idx.get(key);
  }
  /** The node at path, or undefined. */
  node(path: Path): unknown {
    let node: unknown = this.doc.contents;
    for (const seg of path) {
      if (isMap(node)) node = this.pairOf(node, String(seg))?.value;
      else if (isSeq(node) && typeof seg === "number") node = node.items[seg];
      else return undefined;
    }
    return node;
  }
  /** Position of the value at path, or of its nearest existing ancestor; key: position of the key instead. */
  locate(path: Path, key = false): { line: number; column: number } {
    let node: unknown = this.doc.contents;
    let lastKey: Node | undefined;
    let best: number | undefined = (node as Node | null)?.range?.[0];
    for (const seg of path) {
      if (isMap(node)) {
        const pair = this.pairOf(node, String(seg));
        if (!pair) return this.pos(best);
        lastKey = pair.key as Node;
        node = pair.value;
        best = (node as Node | null)?.range?.[0] ?? lastKey?.range?.[0] ?? best;
      } else if (isSeq(node) && typeof seg === "number") {
        const item = node.items[seg];
        if (!item) return this.pos(best);
        lastKey = undefined;
        node = item;
        best = (item as Node).range?.[0] ?? best;
      } else return this.pos(best);
    }
    if (key && lastKey?.range) return this.pos(lastKey.range[0]);
    return this.pos(best);
  }
  /** Line and column of an offset in the text. */
  at(offset: number): { line: number; column: number } {
    return this.pos(offset);
  }
}
