/** One value of a Prometheus text exposition (0 when the series is absent). */
export async function metricValue(httpUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Waits until a counter of a server's /metrics reaches `atLeast`, or fails naming the series and its value. */
export async function waitForMetric(httpUrl: string, series: string, atLeast: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await metricValue(httpUrl, series);
    if (value >= atLeast) return;
    if (Date.now() > deadline) throw new Error(`${series} is ${value}, expected at least ${atLeast}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
