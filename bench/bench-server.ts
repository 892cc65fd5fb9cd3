import path from 'node:path';
import { SERVER_BUILD_ENTRY, ServerProcess } from '@didcomm-mpr/test-kit';

/** The build under test; BENCH_SERVER_ENTRY points at another build (e.g. a patched copy to compare). */
export const SERVER_ENTRY = path.resolve(process.env.BENCH_SERVER_ENTRY ?? SERVER_BUILD_ENTRY);

export interface BenchServerOptions {
  /** Another build than SERVER_ENTRY (the paired runs start several). */
  entry?: string;
  /** External PostgreSQL (a fresh database); when undefined the server runs its embedded PostgreSQL. */
  databaseUrl?: string;
  /** Extra environment for the child (e.g. REDIS_CLUSTER_NODES, INSTANCE_ID). */
  env?: Record<string, string>;
  /** Listen on this port instead of a free one (to restart an instance where its clients expect it). */
  port?: number;
  /** Prefix of the child's log lines, e.g. "server A" (default "server"). */
  label?: string;
}

/**
 * The server under test as the bench runs it: the build (SERVER_ENTRY) as a child process with LOG_LEVEL=warn, on
 * a fresh database (a new embedded cluster in a temp DATA_DIR, or the given URL), with an inspector port for the
 * forced GC of the memory figures. The bench's own environment reaches it (e.g. DATABASE_POOL_SIZE).
 */
export function startBenchServer(options: BenchServerOptions, readyTimeoutMs = 120_000): Promise<ServerProcess> {
  return ServerProcess.start({
    entry: options.entry ?? SERVER_ENTRY,
    inheritEnv: true,
    // BENCH_SERVER_NODE_ARGS: extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    nodeArgs: (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
    inspector: true,
    freshEmbeddedDatabase: !options.databaseUrl,
    echo: options.label ?? 'server',
    readyTimeoutMs,
    env: {
      LOG_LEVEL: 'warn',
      // The drain scenario queues a backlog far beyond the default per-connection quota; the quota check itself
      // still runs on every add.
      MAX_QUEUE_MESSAGES: '1000000000',
      MAX_QUEUE_BYTES: String(Number.MAX_SAFE_INTEGER),
      // The expiry scenario preloads expired messages and measures live delivery while the sweeper deletes them.
      EXPIRY_SWEEP_INTERVAL_MS: '1000',
      ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
      ...(options.port !== undefined ? { PORT: String(options.port) } : {}),
      ...options.env,
    },
  });
}
