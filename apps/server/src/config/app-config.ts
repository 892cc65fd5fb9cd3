import type { TokenRole } from '@didcomm-mpr/protocol';

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
  { mode: 'none' } | { mode: 'single'; url: string } | { mode: 'cluster'; nodes: RedisNode[]; natMap?: Record<string, RedisNode> };

/** FCM through `firebase-admin`: one service-account JSON file per Firebase project, keyed by app id. */
export interface FcmConfig {
  /** `appId` of the token → service-account file; key `default` serves tokens without (or with an unknown) appId. */
  credentialFiles: Record<string, string>;
}

/** APNs with a token-based (.p8) key. */
export interface ApnsConfig {
  keyFile: string;
  keyId: string;
  teamId: string;
  /** The app's bundle id (the `apns-topic`). */
  topic: string;
  production: boolean;
}

export interface PushConfig {
  fcm: FcmConfig | undefined;
  apns: ApnsConfig | undefined;
  webhook: { url: string; secret: string | undefined } | undefined;
  /** Notification shown by the OS (ignored when `dataOnly`). */
  title: string;
  body: string;
  /** Data-only pushes: the app wakes and shows nothing unless it decides to. */
  dataOnly: boolean;
  /** At most one push per device (per connection without a token) in this window, fleet-wide. */
  coalesceWindowMs: number;
  /** Attempts per push on transient failures (429, 5xx, timeouts, network errors), first one included. */
  maxAttempts: number;
  /** First retry delay; doubled each attempt, with full jitter. */
  retryBaseMs: number;
  /** Per-attempt HTTP timeout. */
  timeoutMs: number;
}

/** Message life and per-connection limits. */
export interface RetentionConfig {
  /** Every message expires this long after it was received (`addMessage.ttlMs` may shorten it). */
  messageTtlMs: number;
  maxQueueMessages: number;
  maxQueueBytes: number;
  /** How often one instance of the fleet deletes expired messages. */
  expirySweepIntervalMs: number;
  /** Rows deleted per statement by the sweeper, so one sweep never holds long locks. */
  expirySweepBatch: number;
}

/** One entry of the tokens file: what a bearer token may do, and where. */
export interface AccessToken {
  /** Names the token in logs and metrics; the token itself appears nowhere, not even in the file. */
  name: string;
  /** SHA-256 of the token, lower-case hex. */
  sha256: string;
  /** The connections the token's calls name live in this tenant. */
  tenant: string;
  role: TokenRole;
  /** Requests per second on one instance, summed over the token's sockets; undefined: no limit. */
  maxRequestsPerSecond: number | undefined;
}

/** Who may open a socket, and what each token may do there. */
export interface AuthConfig {
  /** AUTH_TOKENS_FILE, read again on SIGHUP and whenever it changes; undefined with AUTH_TOKENS or no authentication. */
  tokensFile: string | undefined;
  /**
   * The tokens at boot. From AUTH_TOKENS each is a `mediator` of the default tenant. Empty without a file: anyone
   * who reaches the port may connect, as a mediator of the default tenant (a warning is logged at boot).
   */
  tokens: AccessToken[];
}

/** PEM files of the server's certificate (chain) and private key: `wss://` and `https://` on PORT. */
export interface TlsConfig {
  certFile: string;
  keyFile: string;
}

/** The server's whole configuration, validated once at boot (see `loadConfig`). */
export interface AppConfig {
  port: number;
  host: string;
  /** Unset: an embedded PostgreSQL is started with its data in `dataDir`. */
  databaseUrl: string | undefined;
  databasePoolSize: number;
  /** A queue statement that has not answered by then fails as "storage unavailable" (a stalled network). */
  databaseQueryTimeoutMs: number;
  /** At boot, how long PostgreSQL may stay unreachable (retried with backoff) before the server gives up. */
  databaseConnectTimeoutMs: number;
  dataDir: string;
  /** TCP port of the embedded PostgreSQL on 127.0.0.1; 0 picks a free one at each start. */
  embeddedPostgresPort: number;
  auth: AuthConfig;
  /** Read again on SIGHUP; undefined: plain `ws://` and `http://`. */
  tls: TlsConfig | undefined;
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
  /**
   * Deadline of every Redis command (session registry, publishes, push windows, subscriptions): a stalled network
   * answers nothing, and a command unanswered this long fails as "Redis unavailable".
   */
  redisCommandTimeoutMs: number;
  /** Lease of this instance's live sessions; after a crash they are gone fleet-wide within it. */
  sessionLeaseMs: number;
  /** Names this process in the fleet (INSTANCE_ID, or random at each start). */
  instanceId: string;
  push: PushConfig;
  retention: RetentionConfig;
}

export const APP_CONFIG = Symbol('APP_CONFIG');
