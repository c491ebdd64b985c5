// Token and introspection request bodies: JSON (the Otoroshi seed's curl) or
// application/x-www-form-urlencoded (RFC 6749 Appendix B), read with a size cap.
import { parseContentLength } from "../../proxy/headers.ts";
import { formDecode } from "../credentials.ts";
import { badRequest, OAuthError } from "./errors.ts";
import { repeatedMember } from "./json-members.ts";

/** Request parameters; empty values are already dropped (RFC 6749 §3.1). */
export type Params = ReadonlyMap<string, string>;

const utf8 = new TextDecoder("utf-8", { fatal: true });

export async function readParams(req: Request, maxBodySize: number): Promise<Params> {
  const type = mediaType(req.headers.get("content-type"));
  if (type !== "application/json" && type !== "application/x-www-form-urlencoded") {
    throw badRequest("content type must be application/x-www-form-urlencoded or application/json");
  }
  const bytes = await readCapped(req, maxBodySize);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw badRequest("request body is not valid UTF-8");
  }
  return type === "application/json" ? parseJson(text) : parseForm(text);
}

/** RFC 9110 §8.3.1: the type and subtype are case-insensitive; parameters (charset) follow ';'. */
function mediaType(header: string | null): string {
  if (!header) return "";
  const semi = header.indexOf(";");
  return (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase();
}

const tooLarge = () => new OAuthError(413, "invalid_request", "request body too large");

/** Reads at most max bytes; without a Content-Length (chunked) the stream itself is counted.
 * Framing as the route handler checks it (proxy/headers.ts declaredLength), in this shape. */
async function readCapped(req: Request, max: number): Promise<Uint8Array> {
  const te = req.headers.get("transfer-encoding");
  const cl = req.headers.get("content-length");
  // RFC 9112 §6.1 / §6.3: both at once, a coding other than chunked, or lengths that disagree.
  if (te !== null && (cl !== null || te.trim().toLowerCase() !== "chunked")) throw badRequest("unsupported Transfer-Encoding");
  const declared = cl === null ? null : parseContentLength(cl);
  if (cl !== null && declared === null) throw badRequest("invalid Content-Length");
  if (req.body === null) return new Uint8Array(0);
  if (declared !== null) {
    if (declared > max) throw tooLarge();
    // RFC 9112 §6.3: Content-Length frames the body, so the listener delivers no more than
    // declared; reading it whole is bounded (and measurably cheaper than a reader loop).
    const whole = await req.arrayBuffer().catch(() => null);
    if (whole === null) throw badRequest("could not read the request body");
    if (whole.byteLength > max) throw tooLarge();
    return new Uint8Array(whole);
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof OAuthError) throw e;
    // The client went away or sent a broken chunked body: its fault, not ours.
    throw badRequest("could not read the request body");
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * RFC 6749 Appendix B. Stricter than URLSearchParams on purpose: a bad percent escape or one
 * that decodes to invalid UTF-8 is a malformed request, not a value with U+FFFD in it, and
 * RFC 6749 §3.1 forbids repeating a parameter.
 */
function parseForm(text: string): Params {
  const out = new Map<string, string>();
  const seen = new Set<string>();
  for (const pair of text.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const name = formDecode(eq < 0 ? pair : pair.slice(0, eq));
    const value = formDecode(eq < 0 ? "" : pair.slice(eq + 1));
    if (name === null || value === null) throw badRequest("malformed form body");
    if (seen.has(name)) throw badRequest(`parameter '${printable(name)}' is repeated`);
    seen.add(name);
    // RFC 6749 §3.1: a parameter without a value is treated as omitted.
    if (value !== "") out.set(name, value);
  }
  return out;
}

/** The seed's JSON body: an object of string members; null counts as absent. A member given
 * twice is refused as a repeated form parameter is (RFC 6749 §3.1, §3.2). */
function parseJson(text: string): Params {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest("malformed JSON body");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw badRequest("JSON body must be an object");
  const repeated = repeatedMember(text);
  if (repeated !== null) throw badRequest(`parameter '${printable(repeated)}' is repeated`);
  const out = new Map<string, string>();
  for (const [name, v] of Object.entries(value)) {
    if (v === null || v === "") continue;
    if (typeof v !== "string") throw badRequest(`parameter '${printable(name)}' must be a string`);
    out.set(name, v);
  }
  return out;
}

// RFC 6749 §5.2: error_description is printable ASCII without `"` or `\`; names are echoed in it.
function printable(name: string): string {
  return name.slice(0, 64).replace(/[^\x20-\x7e]|["\\]/g, "?");
}
