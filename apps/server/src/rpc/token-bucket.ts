/**
 * A token bucket of `ratePerSecond` tokens a second, holding at most one second's worth (so a token that was idle may
 * burst to its rate, never beyond it). Refilled lazily from the clock at each take: no timer per token.
 */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private ratePerSecond: number,
    now = performance.now(),
  ) {
    this.tokens = ratePerSecond;
    this.refilledAt = now;
  }

  get rate(): number {
    return this.ratePerSecond;
  }

  /** Takes one token: 0 when there was one, otherwise the milliseconds until there will be (nothing is taken). */
  take(now = performance.now()): number {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond));
  }

  /** A reload changed the rate: what is left carries over, within the new capacity. */
  setRate(ratePerSecond: number, now = performance.now()): void {
    this.refill(now);
    this.ratePerSecond = ratePerSecond;
    this.tokens = Math.min(this.tokens, ratePerSecond);
  }

  private refill(now: number): void {
    const elapsedMs = now - this.refilledAt;
    if (elapsedMs > 0) this.tokens = Math.min(this.ratePerSecond, this.tokens + (elapsedMs * this.ratePerSecond) / 1000);
    this.refilledAt = now;
  }
}
