/**
 * Delay before reconnect round `round` (0-based): exponential from `baseMs`, capped at `maxMs`, with
 * "equal jitter" (half fixed, half random) so that a fleet of mediators dropped by the same server restart
 * does not come back in lockstep, while no client waits less than half the nominal delay.
 */
export function backoffDelay(round: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const nominal = Math.min(maxMs, baseMs * 2 ** Math.min(round, 30));
  return Math.round(nominal / 2 + random() * (nominal / 2));
}
