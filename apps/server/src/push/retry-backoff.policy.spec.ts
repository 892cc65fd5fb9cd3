import { MAX_RETRY_DELAY_MS, parseRetryAfter, retryDelayMs } from './retry-backoff.policy';

describe('retryDelayMs (exponential backoff, full jitter)', () => {
  it('stays within [0, base·2^(attempt-1)]', () => {
    expect(retryDelayMs(1, 1000, undefined, () => 0)).toBe(0);
    expect(retryDelayMs(1, 1000, undefined, () => 0.999)).toBe(999);
    expect(retryDelayMs(3, 1000, undefined, () => 0.5)).toBe(2000);
    expect(retryDelayMs(4, 100, undefined, () => 0.999)).toBeLessThan(800);
  });

  it('waits at least Retry-After', () => {
    expect(retryDelayMs(1, 100, 3000, () => 0.5)).toBe(3000);
    expect(retryDelayMs(5, 1000, 10, () => 0.5)).toBe(8000);
  });

  it('is capped', () => {
    expect(retryDelayMs(40, 1000, undefined, () => 0.999)).toBeLessThanOrEqual(MAX_RETRY_DELAY_MS);
    expect(retryDelayMs(1, 1000, 24 * 3600 * 1000, () => 0)).toBe(MAX_RETRY_DELAY_MS);
    // A Retry-After of an hour waits a minute: the retry and the shutdown drain are not held for longer.
    expect(MAX_RETRY_DELAY_MS).toBe(60_000);
    expect(retryDelayMs(1, 1000, 3600 * 1000, () => 0)).toBe(60_000);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
  });

  it('ignores what it cannot read', () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});
