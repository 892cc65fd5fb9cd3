export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'verbose';

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
}

export const APP_CONFIG = Symbol('APP_CONFIG');
