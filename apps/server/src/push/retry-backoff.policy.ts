/**
 * No retry waits longer than this, whatever the base or a `Retry-After` asks: a wake-up that late is of little use,
 * and a provider asking for hours must not keep the retry (and the shutdown drain) waiting that long.
 */
export const MAX_RETRY_DELAY_MS = 60 * 1000;

/**
 * Delay before attempt `attempt + 1` after `attempt` failed (1-based): exponential backoff with full jitter
 * (uniform in [0, base·2^(attempt-1)]), so a fleet retrying after one provider outage does not come back in
 * lockstep. A `Retry-After` from the provider is a floor.
 */
export function retryDelayMs(
  attempt: number,
  baseMs: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.floor(random() * ceiling);
  return Math.min(MAX_RETRY_DELAY_MS, Math.max(jittered, retryAfterMs ?? 0));
}

/** `Retry-After` as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
