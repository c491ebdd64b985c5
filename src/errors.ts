// Gateway errors keep Otoroshi's wire shape: body {"Otoroshi-Error": msg} plus the headers
// Otoroshi-Error: true and Otoroshi-Error-Msg. Every failure also carries a stable code
// that tests and logs use; wording can change, codes do not.

export type ErrorCode =
  | "ERR_ROUTE_NOT_FOUND"
  | "ERR_METHOD_NOT_ALLOWED"
  | "ERR_APIKEY_MISSING"
  | "ERR_APIKEY_INVALID"
  | "ERR_APIKEY_UNAUTHORIZED"
  | "ERR_TOKEN_EXPIRED"
  | "ERR_QUOTA_EXCEEDED"
  | "ERR_TOO_MANY_FAILURES"
  | "ERR_BAD_REQUEST"
  | "ERR_PAYLOAD_TOO_LARGE"
  | "ERR_UPSTREAM_REFUSED"
  | "ERR_UPSTREAM_TIMEOUT"
  | "ERR_UPSTREAM_ERROR"
  | "ERR_UPSTREAM_BUSY"
  | "ERR_CLIENT_CLOSED"
  | "ERR_NO_TARGET"
  | "ERR_NO_HEALTHY_TARGET"
  | "ERR_FORBIDDEN"
  | "ERR_WEBSOCKET_UNSUPPORTED"
  | "ERR_INTERNAL";

export class GatewayError extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly headers: Record<string, string>;
  constructor(status: number, code: ErrorCode, message: string, headers: Record<string, string> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GatewayError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/**
 * A failure reading the client's request body while it was sent to a backend (an upload that
 * broke off: RFC 9112 §8 incomplete message; or bad chunked framing). An UpstreamFetch that
 * can tell rejects with it (or with it in the cause chain), so the gateway answers 400 instead
 * of blaming the backend.
 */
export class RequestBodyError extends Error {
  constructor(cause: unknown) {
    super("reading the client's request body failed", { cause });
    this.name = "RequestBodyError";
  }
}

/** The one renderer for gateway errors. */
export function errorResponse(err: GatewayError, method = "GET"): Response {
  const headers = new Headers(err.headers);
  headers.set("content-type", "application/json");
  headers.set("otoroshi-error", "true");
  // Header values must be ByteStrings: keep the message ASCII-safe.
  headers.set("otoroshi-error-msg", err.message.replace(/[^\x20-\x7e]/g, "?"));
  headers.set("otoroshi-error-code", err.code);
  const body = method === "HEAD" ? null : JSON.stringify({ "Otoroshi-Error": err.message });
  return new Response(body, { status: err.status, headers });
}

/** One problem found in a configuration, with where it is. */
export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  /** Dotted path with [i] indexes, e.g. routes[3].plugins[0].config.keyPair; "" for the root. */
  path: string;
  message: string;
  /** Warnings never reject a config; `check` prints them. */
  severity?: "error" | "warning";
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.column}${p.path ? " " + p.path : ""}: ${p.message}`;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(problems.map(formatProblem).join("\n"));
    this.name = "ConfigError";
    this.problems = problems;
  }
}
