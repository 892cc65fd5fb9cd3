import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * Service-account files that pass the server's config check (the three fields it reads). Their key is never used:
 * the tests give the SDK a static access token through the FcmAppFactory seam.
 */
export function fakeServiceAccountFiles(projects: string[]): { files: Record<string, string>; remove: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-fake-firebase-'));
  const files: Record<string, string> = {};
  for (const project of projects) {
    const file = path.join(dir, `${project}.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({ type: 'service_account', project_id: project, client_email: `push@${project}.iam.gserviceaccount.com`, private_key: 'unused' }),
    );
    files[project] = file;
  }
  return { files, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

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
