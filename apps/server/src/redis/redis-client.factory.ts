import Redis, { Cluster, ClusterOptions, RedisOptions } from 'ioredis';
import { RedisConfig } from '../config';

export type RedisClient = Redis | Cluster;
/**
 * `commands`: every command but subscriptions (publish, the session registry, push windows), failing fast while Redis
 * is unreachable. `subscriber`: the connection(s) in subscriber mode.
 */
export type RedisRole = 'commands' | 'subscriber';

/** Reconnect quickly but not in a busy loop: 50 ms, 100 ms, … up to 2 s between attempts, forever. */
const retryStrategy = (attempt: number): number => Math.min(50 * attempt, 2000);

/**
 * The one place that builds ioredis clients. The command client fails fast while Redis is unreachable (a message is
 * already committed in PostgreSQL; the caller logs the rejection). The subscriber keeps its own connections: on a
 * single node one connection in subscriber mode, on a cluster one connection per master (`shardedSubscribers`) for
 * SSUBSCRIBE; its subscriptions are restored by `RedisPubSubAdapter`, not by ioredis' offline queue.
 *
 * Every command's deadline is `RedisConnections`' guard (`commandTimeoutMs`). `socketTimeout` is its counterpart for
 * the connection: one that stays silent for twice that long while commands wait on it is dropped and made again, so
 * a stalled TCP connection (a partition: no answer, no reset) does not outlive the stall, and what waited on it is
 * released; while it reconnects, commands on a single node fail at once (no offline queue). Twice, so that the
 * callers get their deadline's answer first, and so that a busy event loop that reads late is not taken for a
 * silent network.
 */
export function createRedisClient(
  config: Exclude<RedisConfig, { mode: 'none' }>,
  role: RedisRole,
  connectionName: string,
  commandTimeoutMs: number,
): RedisClient {
  const common: RedisOptions = {
    connectionName: `${connectionName}-${role}`,
    retryStrategy,
    maxRetriesPerRequest: role === 'commands' ? 0 : null,
    // Single node: a publish while disconnected rejects at once; subscriptions are re-sent on `ready`.
    enableOfflineQueue: false,
    autoResubscribe: false,
    socketTimeout: 2 * commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 2000),
  };
  if (config.mode === 'single') return new Redis(config.url, common);

  const options: ClusterOptions = {
    natMap: config.natMap,
    shardedSubscribers: role === 'subscriber',
    clusterRetryStrategy: retryStrategy,
    // Cluster: commands wait while the cluster (re)connects, within their deadline (the guard's, from the moment they
    // are issued: ioredis' own `commandTimeout` would not cover this offline queue).
    enableOfflineQueue: true,
    retryDelayOnClusterDown: 100,
    retryDelayOnFailover: 100,
    slotsRefreshTimeout: 2000,
    redisOptions: {
      connectionName: common.connectionName,
      maxRetriesPerRequest: common.maxRetriesPerRequest,
      // (The cluster creates node connections lazily, with an offline queue: a first command waits for the connect.)
      connectTimeout: common.connectTimeout,
      socketTimeout: common.socketTimeout,
    },
  };
  return new Cluster(config.nodes, options);
}
