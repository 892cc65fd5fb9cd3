import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ApnsConfig,
  AppConfig,
  AuthConfig,
  FcmConfig,
  LogLevel,
  PushConfig,
  RedisConfig,
  RedisNode,
  RetentionConfig,
  TlsConfig,
} from './app-config';
import { ConfigError } from './config.error';
import { readTlsCredentials } from './tls-credentials.reader';
import { legacyTokens, readTokensFile } from './tokens-file.reader';

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

function bool(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const lower = value.toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(lower)) return true;
  if (['false', '0', 'no', 'off'].includes(lower)) return false;
  throw new ConfigError(name, `must be true or false, got "${value}"`);
}

/** A file the server must read at boot: checked now, so a typo stops the server instead of the first push. */
function readableFile(name: string, value: string): string {
  const resolved = path.resolve(value);
  try {
    fs.accessSync(resolved, fs.constants.R_OK);
  } catch {
    throw new ConfigError(name, `names a file that cannot be read: "${resolved}"`);
  }
  return resolved;
}

function serviceAccountFile(name: string, value: string): string {
  const file = readableFile(name, value);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new ConfigError(name, `"${file}" is not a JSON file`);
  }
  const account = parsed as Record<string, unknown>;
  for (const key of ['project_id', 'client_email', 'private_key']) {
    if (typeof account?.[key] !== 'string') {
      throw new ConfigError(name, `"${file}" is not a Firebase service-account key (no "${key}")`);
    }
  }
  return file;
}

function fcmConfig(env: Env): FcmConfig | undefined {
  const credentials = raw(env, 'FIREBASE_CREDENTIALS');
  if (credentials === undefined) {
    const google = raw(env, 'GOOGLE_APPLICATION_CREDENTIALS');
    if (google === undefined) return undefined;
    return { credentialFiles: { default: serviceAccountFile('GOOGLE_APPLICATION_CREDENTIALS', google) } };
  }
  if (!credentials.includes('=')) {
    return { credentialFiles: { default: serviceAccountFile('FIREBASE_CREDENTIALS', credentials) } };
  }
  const credentialFiles: Record<string, string> = {};
  for (const entry of list(credentials)) {
    const at = entry.indexOf('=');
    const appId = at > 0 ? entry.slice(0, at).trim() : '';
    const file = at > 0 ? entry.slice(at + 1).trim() : '';
    if (appId === '' || file === '') {
      throw new ConfigError('FIREBASE_CREDENTIALS', `must be a file path or a list of appId=path, got "${entry}"`);
    }
    if (credentialFiles[appId] !== undefined) throw new ConfigError('FIREBASE_CREDENTIALS', `lists "${appId}" twice`);
    credentialFiles[appId] = serviceAccountFile('FIREBASE_CREDENTIALS', file);
  }
  return { credentialFiles };
}

function apnsConfig(env: Env): ApnsConfig | undefined {
  const keyFile = raw(env, 'APNS_KEY_FILE');
  if (keyFile === undefined) {
    for (const name of ['APNS_KEY_ID', 'APNS_TEAM_ID', 'APNS_TOPIC']) {
      if (raw(env, name) !== undefined) throw new ConfigError(name, 'is only used with APNS_KEY_FILE');
    }
    return undefined;
  }
  const required = (name: string): string => {
    const value = raw(env, name);
    if (value === undefined) throw new ConfigError(name, 'is required with APNS_KEY_FILE');
    return value;
  };
  return {
    keyFile: readableFile('APNS_KEY_FILE', keyFile),
    keyId: required('APNS_KEY_ID'),
    teamId: required('APNS_TEAM_ID'),
    topic: required('APNS_TOPIC'),
    production: bool(env, 'APNS_PRODUCTION', true),
  };
}

function pushConfig(env: Env): PushConfig {
  const webhookUrl = url(env, 'PUSH_WEBHOOK_URL', ['http:', 'https:']);
  const webhookSecret = raw(env, 'PUSH_WEBHOOK_SECRET');
  if (webhookSecret !== undefined && webhookUrl === undefined) {
    throw new ConfigError('PUSH_WEBHOOK_SECRET', 'is only used with PUSH_WEBHOOK_URL');
  }
  return {
    fcm: fcmConfig(env),
    apns: apnsConfig(env),
    webhook: webhookUrl === undefined ? undefined : { url: webhookUrl, secret: webhookSecret },
    title: raw(env, 'PUSH_TITLE') ?? 'New message',
    body: raw(env, 'PUSH_BODY') ?? 'You have a new message',
    dataOnly: bool(env, 'PUSH_DATA_ONLY', false),
    coalesceWindowMs: int(env, 'PUSH_COALESCE_WINDOW_MS', 10_000, 0),
    maxAttempts: int(env, 'PUSH_MAX_ATTEMPTS', 5, 1, 100),
    retryBaseMs: int(env, 'PUSH_RETRY_BASE_MS', 1_000, 1),
    timeoutMs: int(env, 'PUSH_TIMEOUT_MS', 10_000, 100),
  };
}

function retentionConfig(env: Env): RetentionConfig {
  return {
    messageTtlMs: int(env, 'MESSAGE_TTL_MS', 7 * 24 * 3600 * 1000, 1000),
    maxQueueMessages: int(env, 'MAX_QUEUE_MESSAGES', 10_000, 1),
    maxQueueBytes: int(env, 'MAX_QUEUE_BYTES', 100 * 1024 * 1024, 1024),
    expirySweepIntervalMs: int(env, 'EXPIRY_SWEEP_INTERVAL_MS', 60_000, 100),
    expirySweepBatch: int(env, 'EXPIRY_SWEEP_BATCH', 1_000, 1, 100_000),
  };
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

function authConfig(env: Env): AuthConfig {
  const tokens = list(raw(env, 'AUTH_TOKENS') ?? '');
  const file = raw(env, 'AUTH_TOKENS_FILE');
  if (file === undefined) return { tokensFile: undefined, tokens: legacyTokens(tokens) };
  if (tokens.length > 0) {
    throw new ConfigError(
      'AUTH_TOKENS_FILE',
      'cannot be set together with AUTH_TOKENS: move those tokens into the file (role "mediator", tenant "default")',
    );
  }
  const tokensFile = path.resolve(file);
  return { tokensFile, tokens: readTokensFile(tokensFile) };
}

function tlsConfig(env: Env): TlsConfig | undefined {
  const certFile = raw(env, 'TLS_CERT_FILE');
  const keyFile = raw(env, 'TLS_KEY_FILE');
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined) throw new ConfigError('TLS_CERT_FILE', 'is required with TLS_KEY_FILE');
  if (keyFile === undefined) throw new ConfigError('TLS_KEY_FILE', 'is required with TLS_CERT_FILE');
  const tls = { certFile: path.resolve(certFile), keyFile: path.resolve(keyFile) };
  readTlsCredentials(tls);
  return tls;
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

  return {
    port: int(env, 'PORT', 3100, 0, 65535),
    host: raw(env, 'HOST') ?? '0.0.0.0',
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10, 2, 1000),
    databaseQueryTimeoutMs: int(env, 'DATABASE_QUERY_TIMEOUT_MS', 10_000, 100),
    databaseConnectTimeoutMs: int(env, 'DATABASE_CONNECT_TIMEOUT_MS', 60_000, 0),
    dataDir: path.resolve(raw(env, 'DATA_DIR') ?? './.data'),
    embeddedPostgresPort: int(env, 'EMBEDDED_POSTGRES_PORT', 0, 0, 65535),
    auth: authConfig(env),
    tls: tlsConfig(env),
    redeliveryTimeoutMs: int(env, 'REDELIVERY_TIMEOUT_MS', 60_000, 100),
    heartbeatIntervalMs: int(env, 'HEARTBEAT_INTERVAL_MS', 15_000, 100),
    maxTakeMessages: int(env, 'MAX_TAKE_MESSAGES', 100, 1, 10_000),
    maxPayloadBytes,
    maxFrameBytes,
    maxSocketBufferBytes: int(env, 'MAX_SOCKET_BUFFER_BYTES', 2 * maxFrameBytes, maxFrameBytes),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 0),
    logLevel: logLevel as LogLevel,
    redis: redisConfig(env),
    redisCommandTimeoutMs: int(env, 'REDIS_COMMAND_TIMEOUT_MS', 2_000, 10, 600_000),
    sessionLeaseMs: int(env, 'SESSION_LEASE_MS', 30_000, 300),
    instanceId: raw(env, 'INSTANCE_ID') ?? randomUUID(),
    push: pushConfig(env),
    retention: retentionConfig(env),
  };
}
