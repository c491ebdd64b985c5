// server.monitoring: who may read the monitoring endpoints (src/monitoring/access.ts).
import { z } from "zod";

/**
 * RFC 6750 §2.1's b64token, so the key can be sent as `Authorization: Bearer <key>` unchanged;
 * at least 16 characters, so it cannot be guessed from the Internet.
 */
const B64TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;
// Checked after ${env:…}/${file:…} substitution, as refinements: the JSON Schema (editors) sees
// the reference as written, which these rules would wrongly refuse.
const accessKey = z
  .string()
  .refine((v) => v.length >= 16, "must be at least 16 characters (a short key can be guessed); e.g. `openssl rand -base64 32`")
  .refine((v) => v.length <= 1024, "must be at most 1024 characters")
  .refine((v) => B64TOKEN.test(v), "may contain letters, digits and . _ ~ + / - only (with trailing '='), so it can be sent as a Bearer token");

export const Monitoring = z
  .strictObject({
    accessKey: accessKey
      .optional()
      .describe(
        "A secret that lets a caller from any address read /.well-known/otoroshi/monitoring/* (Authorization: Bearer <key> or ?access_key=<key>); without it only loopback and trustedProxies may. Use ${env:…} or ${file:…}",
      ),
    perClientMetrics: z
      .boolean()
      .default(false)
      .describe("Also count requests per API key client id (otoroshi_client_requests_total{client_id}): one series per configured key, so off by default"),
  })
  .prefault({})
  .describe("The monitoring endpoints (live, ready, health, metrics)");

/** server.accessLog (src/monitoring/access-log.ts). */
export const AccessLog = z
  .strictObject({
    enabled: z.boolean().default(true).describe("One JSON line per request, written when its response ends (docs/operations.md lists the fields)"),
    file: z
      .string()
      .min(1)
      .optional()
      .describe("Append the lines to this file (relative: to the config file's directory), reopened on SIGUSR1 for logrotate; absent: stdout (the other logs go to stderr)"),
  })
  .prefault({})
  .describe("The access log");

export type MonitoringConfig = z.output<typeof Monitoring>;
