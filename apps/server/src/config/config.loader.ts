import * as path from 'node:path';
import { AppConfig, LogLevel } from './app-config';
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
  const authTokens = (raw(env, 'AUTH_TOKENS') ?? '')
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token.length > 0);

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
  };
}
