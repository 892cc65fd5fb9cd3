import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { AppConfig, LogLevel, RedisConfig, RedisNode } from './app-config';
import { ConfigError } from './config.error';

type Env = Record<string, string | undefined>;

const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug', 'verbose'];
/** Room for the JSON-RPC envelope around a maximal payload (ids, DIDs, names). */
const FRAME_ENVELOPE_BYTES = 64 * 1024;

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  // An empty assignment (`PORT=`) in an env file means "not set", as docker and dotenv treat it.
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value)) throw new ConfigError(name, `must be an integer, got "${value}"`);
  const parsed = Number(value);
  if (parsed < min || parsed > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${parsed}`);
  return parsed;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(name, 'must be a URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return value;
}

function hostPort(name: string, value: string): RedisNode {
  const match = /^([^\s:,=]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) {
    throw new ConfigError(name, `needs host:port with a port from 1 to 65535, got "${value}"`);
  }
  return { host: match[1].replace(/^\[(.*)\]$/, '$1'), port };
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

function redisConfig(env: Env): RedisConfig {
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const clusterNodes = raw(env, 'REDIS_CLUSTER_NODES');
  const natMap = raw(env, 'REDIS_NAT_MAP');
  if (redisUrl !== undefined && clusterNodes !== undefined) {
    throw new ConfigError('REDIS_CLUSTER_NODES', 'cannot be set together with REDIS_URL: set one of them');
  }
  if (natMap !== undefined && clusterNodes === undefined) {
    throw new ConfigError('REDIS_NAT_MAP', 'is only used with REDIS_CLUSTER_NODES');
  }
  if (redisUrl !== undefined) return { mode: 'single', url: redisUrl };
  if (clusterNodes === undefined) return { mode: 'none' };
  const nodes = list(clusterNodes).map((item) => hostPort('REDIS_CLUSTER_NODES', item));
  if (nodes.length === 0) throw new ConfigError('REDIS_CLUSTER_NODES', 'must list at least one host:port');
  if (natMap === undefined) return { mode: 'cluster', nodes };
  const map: Record<string, RedisNode> = {};
  for (const entry of list(natMap)) {
    const parts = entry.split('=');
    if (parts.length !== 2) {
      throw new ConfigError('REDIS_NAT_MAP', `must be a comma-separated list of internalHost:port=externalHost:port, got "${entry}"`);
    }
    const internal = hostPort('REDIS_NAT_MAP', parts[0].trim());
    map[`${internal.host}:${internal.port}`] = hostPort('REDIS_NAT_MAP', parts[1].trim());
  }
  return { mode: 'cluster', nodes, natMap: map };
}

/**
 * Reads and validates the environment once at boot. Throws a `ConfigError` naming the variable at the first
 * bad value, so a typo stops the server instead of silently running with a default.
 */
export function loadConfig(env: Env = process.env): AppConfig {
  const maxPayloadBytes = int(env, 'MAX_PAYLOAD_BYTES', 4 * 1024 * 1024, 1024, 512 * 1024 * 1024);
  const maxFrameBytes = int(env, 'MAX_FRAME_BYTES', maxPayloadBytes + FRAME_ENVELOPE_BYTES, 1024, 1024 * 1024 * 1024);
  if (maxFrameBytes < maxPayloadBytes + FRAME_ENVELOPE_BYTES) {
    throw new ConfigError(
      'MAX_FRAME_BYTES',
      `must leave ${FRAME_ENVELOPE_BYTES} bytes of envelope above MAX_PAYLOAD_BYTES (at least ${maxPayloadBytes + FRAME_ENVELOPE_BYTES}), got ${maxFrameBytes}`,
    );
  }
  const logLevel = (raw(env, 'LOG_LEVEL') ?? 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  const authTokens = list(raw(env, 'AUTH_TOKENS') ?? '');

  return {
    port: int(env, 'PORT', 3100, 0, 65535),
    host: raw(env, 'HOST') ?? '0.0.0.0',
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10, 2, 1000),
    dataDir: path.resolve(raw(env, 'DATA_DIR') ?? './.data'),
    embeddedPostgresPort: int(env, 'EMBEDDED_POSTGRES_PORT', 0, 0, 65535),
    authTokens,
    redeliveryTimeoutMs: int(env, 'REDELIVERY_TIMEOUT_MS', 60_000, 100),
    heartbeatIntervalMs: int(env, 'HEARTBEAT_INTERVAL_MS', 15_000, 100),
    maxTakeMessages: int(env, 'MAX_TAKE_MESSAGES', 100, 1, 10_000),
    maxPayloadBytes,
    maxFrameBytes,
    maxSocketBufferBytes: int(env, 'MAX_SOCKET_BUFFER_BYTES', 2 * maxFrameBytes, maxFrameBytes),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0),
    logLevel: logLevel as LogLevel,
    redis: redisConfig(env),
    sessionLeaseMs: int(env, 'SESSION_LEASE_MS', 30_000, 300),
    instanceId: raw(env, 'INSTANCE_ID') ?? randomUUID(),
  };
}
