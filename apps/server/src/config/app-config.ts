export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'verbose';

export interface RedisNode {
  host: string;
  port: number;
}

/**
 * Pub/sub transport between server instances. `none`: in-process (single instance). `single`: one Redis node
 * (`REDIS_URL`). `cluster`: a Redis Cluster (`REDIS_CLUSTER_NODES`), with an optional NAT map from the addresses
 * the cluster announces to the ones this instance can reach (`REDIS_NAT_MAP`).
 */
export type RedisConfig =
  | { mode: 'none' }
  | { mode: 'single'; url: string }
  | { mode: 'cluster'; nodes: RedisNode[]; natMap?: Record<string, RedisNode> };

/** The server's whole configuration, validated once at boot (see `loadConfig`). */
export interface AppConfig {
  port: number;
  host: string;
  /** Unset: an embedded PostgreSQL is started with its data in `dataDir`. */
  databaseUrl: string | undefined;
  databasePoolSize: number;
  dataDir: string;
  /** TCP port of the embedded PostgreSQL on 127.0.0.1; 0 picks a free one at each start. */
  embeddedPostgresPort: number;
  /** Empty: anyone may connect (a warning is logged at boot). */
  authTokens: string[];
  redeliveryTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxTakeMessages: number;
  maxPayloadBytes: number;
  maxFrameBytes: number;
  /** Above this many unsent bytes on a socket, live messages stay pending instead of queueing in memory. */
  maxSocketBufferBytes: number;
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
  redis: RedisConfig;
  /** Lease of this instance's live sessions; after a crash they are gone fleet-wide within it. */
  sessionLeaseMs: number;
  /** Names this process in the fleet (INSTANCE_ID, or random at each start). */
  instanceId: string;
}

export const APP_CONFIG = Symbol('APP_CONFIG');
