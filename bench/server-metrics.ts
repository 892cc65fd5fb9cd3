/**
 * Reads the server's own event-loop delay from GET /metrics (prom-client's default metrics, which reset their
 * histogram at each scrape): scrape once before a phase to start the window, once after to read it. Tells a
 * latency tail caused inside the server's event loop from one caused elsewhere (PostgreSQL, the kernel, CPU).
 */
export interface EventLoopDelay {
  p99Ms: number;
  maxMs: number;
}

async function scrape(httpBase: string): Promise<string | undefined> {
  try {
    const response = await fetch(`${httpBase}/metrics`, { signal: AbortSignal.timeout(5_000) });
    return response.ok ? await response.text() : undefined;
  } catch {
    return undefined;
  }
}

function gaugeMs(text: string, suffix: string): number {
  const match = new RegExp(`^\\w*${suffix}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return match ? Number(match[1]) * 1000 : Number.NaN;
}

/** Starts a measurement window (the scrape resets the server's histogram). */
export async function startEventLoopWindow(httpBase: string): Promise<void> {
  await scrape(httpBase);
}

/** The server's event-loop delay since the previous scrape, or undefined if it exposes no such metric. */
export async function readEventLoopWindow(httpBase: string): Promise<EventLoopDelay | undefined> {
  const text = await scrape(httpBase);
  if (!text) return undefined;
  const delay = { p99Ms: gaugeMs(text, 'nodejs_eventloop_lag_p99_seconds'), maxMs: gaugeMs(text, 'nodejs_eventloop_lag_max_seconds') };
  return Number.isFinite(delay.maxMs) ? delay : undefined;
}
