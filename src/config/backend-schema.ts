// backend.loadBalancing, backend.healthCheck and the failover fields of backend.client
// (Otoroshi's names). Kept apart from schema.ts to keep that file small.
import { z } from "zod";
import { CALLS, headerName, MILLISECONDS, quantity } from "./fields.ts";

export const BALANCING_TYPES = ["RoundRobin", "Random", "LeastConnections", "PowerOfTwoRandomChoices", "IpAddressHash", "HeaderHash", "CookieHash"] as const;

export const LoadBalancing = z
  .strictObject({
    type: z
      .enum(BALANCING_TYPES, { error: `unknown load balancing type (known: ${BALANCING_TYPES.join(", ")})` })
      .default("RoundRobin")
      .describe(
        "RoundRobin (smooth weighted), Random (weighted), LeastConnections (fewest calls in flight per weight), PowerOfTwoRandomChoices, IpAddressHash (client address after trusted X-Forwarded-For), HeaderHash (headerName), CookieHash (cookieName). Hash types use weighted rendezvous hashing over the healthy targets and fall back to RoundRobin when the value is absent",
      ),
    headerName: headerName.optional().describe("HeaderHash: the request header whose value picks the target"),
    cookieName: z
      .string()
      .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "not a valid cookie name")
      .optional()
      .describe("CookieHash: the cookie whose value picks the target"),
  })
  .superRefine((lb, ctx) => {
    if (lb.type === "HeaderHash" && lb.headerName === undefined) ctx.addIssue({ code: "custom", path: ["headerName"], message: "HeaderHash needs headerName" });
    if (lb.type === "CookieHash" && lb.cookieName === undefined) ctx.addIssue({ code: "custom", path: ["cookieName"], message: "CookieHash needs cookieName" });
    if (lb.headerName !== undefined && lb.type !== "HeaderHash") ctx.addIssue({ code: "custom", path: ["headerName"], message: "headerName is only read by the HeaderHash type" });
    if (lb.cookieName !== undefined && lb.type !== "CookieHash") ctx.addIssue({ code: "custom", path: ["cookieName"], message: "cookieName is only read by the CookieHash type" });
  })
  .prefault({})
  .describe("How each call picks a target (Otoroshi's loadBalancing)");

/** A path on each target ("/health") or a full http(s) URL. */
const checkUrl = z
  .string()
  .refine((u) => (u.startsWith("/") && !u.startsWith("//") && !/[\s#]/.test(u)) || (/^https?:\/\//i.test(u) && URL.canParse(u)), "expected a path starting with '/' or a full http(s) URL")
  .default("/");

export const HealthCheck = z
  .strictObject({
    enabled: z.boolean().default(false).describe("Check every target actively"),
    url: checkUrl.describe("Path asked of each target (GET, the target's Host), or a full http(s) URL called as written; 2xx and 3xx pass"),
    intervalMs: quantity(MILLISECONDS, 100, 3_600_000).default(5_000).describe("Milliseconds between the end of one check of a target and the start of the next (one check in flight per target)"),
    timeoutMs: quantity(MILLISECONDS, 1, 600_000).default(2_000).describe("Milliseconds a check may take (then it failed)"),
    unhealthyThreshold: z.number().int().min(1).max(100).default(3).describe("Failed checks in a row that take a target out"),
    healthyThreshold: z.number().int().min(1).max(100).default(2).describe("Passed checks in a row that bring it back"),
  })
  .prefault({})
  .describe("Active health checks of the targets (a target starts healthy)");

/** The failover fields of backend.client (spread into its object in schema.ts). */
export const FailoverClientFields = {
  retries: z
    .number()
    .int()
    .min(0)
    .max(10)
    .default(1)
    .describe(
      "Retries after the first attempt (Otoroshi counts attempts). A call that could not connect is retried on another target for any method; one that failed after it was sent only for GET, HEAD, OPTIONS, PUT and DELETE without a body",
    ),
  retryInitialDelay: quantity(MILLISECONDS, 0, 60_000).default(50).describe(
    "Milliseconds before the first retry that is not an immediate failover to another target; multiplied by backoffFactor for each next one",
  ),
  backoffFactor: z.number().min(1).max(10).default(2).describe("Growth of the delay between retries"),
  connectionTimeout: quantity(MILLISECONDS, 1, 3_600_000)
    .default(10_000)
    .describe("Milliseconds to open a connection to a target (then the call failed and may be retried elsewhere). Enforced on Deno; on Bun the call is bounded by `timeout` only (docs/operations.md)"),
  maxErrors: quantity(CALLS, 1, 100_000).default(20).describe("Consecutive failed calls (no connection, broken off, timed out) after which a target's circuit breaker opens"),
  sampleInterval: quantity(MILLISECONDS, 1, 3_600_000).default(2_000).describe("Milliseconds an open circuit breaker keeps the target out; then one call may try it again"),
};

export type LoadBalancingConfig = z.output<typeof LoadBalancing>;
export type HealthCheckConfig = z.output<typeof HealthCheck>;
