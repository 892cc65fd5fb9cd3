import type { JsonRpcWsClientOptions } from '@didcomm-mpr/test-kit';
import { PayloadPool } from './payload';
import { Report } from './report';

/** What every scenario gets: where the server is, what it may measure there, and where figures go. */
export interface BenchContext {
  /** ws://host:port/ */
  wsUrl: string;
  /** http://host:port (for /health) */
  httpBase: string;
  /** The server child's pid, when the bench started it (memory and CPU figures need it). */
  serverPid: number | undefined;
  /** Direct SQL access to the server's database, when the bench owns it (preloading, plans, counts). */
  databaseUrl: string | undefined;
  /** Unique prefix for this run's connection ids, so runs against a shared server never collide. */
  runId: string;
  /** The tenant of the bench's connections: `bench` with BENCH_TOKENS_FILE=1, else `default`. */
  tenant: string;
  payloads: PayloadPool;
  report: Report;
}

/**
 * How the bench opens its sockets: nothing recorded (notifications go to a handler as they come, and a recording
 * client's memory would grow with every one), and calls given 30 s, as a saturated server may need.
 */
export const BENCH_CLIENT: JsonRpcWsClientOptions = { record: false, callTimeoutMs: 30_000 };

/** GET /health of the server at `httpBase` and return its liveSessions field (its count of held live sessions). */
export async function liveSessionCount(httpBase: string): Promise<number> {
  const response = await fetch(`${httpBase}/health`, { signal: AbortSignal.timeout(5_000) });
  const body = (await response.json()) as { liveSessions?: number };
  return body.liveSessions ?? Number.NaN;
}
