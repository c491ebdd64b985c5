// When to renew a certificate, and how long to wait after a failure. Pure functions: the
// manager owns the clock and the timers.

const DAY = 86_400_000;

/** First retry after a failure, then doubling up to the cap. */
export const RETRY_BASE_MS = 60_000;
/** Never wait longer than this between attempts (a day's wait would outlive short certificates). */
export const RETRY_CAP_MS = 6 * 3_600_000;

export interface RenewalTime {
  /** Epoch ms from which the certificate is due for renewal. */
  at: number;
  /**
   * renewBefore covers the whole lifetime: a new certificate would be due the moment it is
   * issued, so the default (a third of the lifetime) applies to it instead.
   */
  clamped: boolean;
}

/**
 * Due `renewBefore` days before notAfter, or with a third of the lifetime left by default (what
 * Let's Encrypt recommends for its 90-day certificates: renew at 60 days).
 */
export function renewalTime(notBefore: number, notAfter: number, renewBeforeDays: number | undefined): RenewalTime {
  const lifetime = Math.max(0, notAfter - notBefore);
  const byDefault = notAfter - lifetime / 3;
  if (renewBeforeDays === undefined) return { at: byDefault, clamped: false };
  const at = notAfter - renewBeforeDays * DAY;
  return at <= notBefore ? { at: byDefault, clamped: true } : { at, clamped: false };
}

/**
 * Exponential backoff with ±20 % jitter (so that gateways restarted together do not retry in
 * step), from RETRY_BASE_MS to RETRY_CAP_MS. `failures` counts the failures so far (≥ 1).
 * A Retry-After from the server (RFC 8555 §6.6, rate limits) is honoured when it is longer.
 */
export function retryDelay(failures: number, random: number, retryAfterMs = 0): number {
  const exp = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.min(20, Math.max(0, failures - 1)));
  const r = Number.isFinite(random) ? Math.min(1, Math.max(0, random)) : 0.5;
  const jittered = Math.round(exp * (0.8 + 0.4 * r));
  const after = Number.isFinite(retryAfterMs) ? Math.min(retryAfterMs, 24 * 3_600_000) : 0;
  return Math.max(jittered, after);
}
