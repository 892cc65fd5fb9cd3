import { createTestDatabase, RedisClusterProcesses, ServerProcess, startRedisCluster } from '@didcomm-mpr/test-kit';
import { FAULTS_REDELIVERY_TIMEOUT_MS } from './faults-profile';

export interface FaultFleet {
  servers: ServerProcess[];
  cluster: RedisClusterProcesses | undefined;
  databaseUrl: string;
  close(): Promise<void>;
}

export interface FaultFleetOptions {
  instances: number;
  /** A 3-master Redis Cluster between the instances (needed for more than one instance). */
  redisCluster: boolean;
  /** An existing database (e.g. on our own PostgreSQL); otherwise a fresh one on the test PostgreSQL. */
  databaseUrl?: string;
  env?: Record<string, string>;
  /** More environment for one instance (e.g. reaching Redis through proxies of its own), given the cluster. */
  instanceEnv?: (index: number, cluster: RedisClusterProcesses | undefined) => Promise<Record<string, string>>;
  /** Reserve each server's V8 inspector port, for a forced garbage collection (`ForcedGc`). */
  inspector?: boolean;
}

/**
 * Real server processes (apps/server/src/main.ts through ts-node) on loopback, sharing one database and,
 * optionally, a Redis Cluster started from redis-server.
 */
export async function startFaultFleet(options: FaultFleetOptions): Promise<FaultFleet> {
  const database = options.databaseUrl ? { url: options.databaseUrl, drop: async () => undefined } : await createTestDatabase();
  let cluster: RedisClusterProcesses | undefined;
  const close = async () => {
    await ServerProcess.stopAll();
    await cluster?.close();
    await database.drop();
  };
  try {
    cluster = options.redisCluster ? await startRedisCluster(3) : undefined;
    const servers: ServerProcess[] = [];
    // One after the other: both would run the migrations, and two ts-node compilations at once on two cores
    // only make each slower.
    for (let i = 0; i < options.instances; i++) {
      servers.push(
        await ServerProcess.start({
          env: {
            DATABASE_URL: database.url,
            INSTANCE_ID: `faults-${i}`,
            REDELIVERY_TIMEOUT_MS: String(FAULTS_REDELIVERY_TIMEOUT_MS),
            LOG_LEVEL: 'warn',
            ...(cluster ? { REDIS_CLUSTER_NODES: cluster.seeds } : {}),
            ...options.env,
            ...(await options.instanceEnv?.(i, cluster)),
          },
          readyTimeoutMs: 120_000,
          inspector: options.inspector,
        }),
      );
    }
    return { servers, cluster, databaseUrl: database.url, close };
  } catch (error) {
    await close();
    throw error;
  }
}
