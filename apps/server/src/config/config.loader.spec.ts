import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from './config.error';
import { loadConfig } from './config.loader';
import { tokenDigest } from './tokens-file.reader';

const MiB = 1024 * 1024;
const ENVELOPE = 64 * 1024;

/** What an AUTH_TOKENS token becomes: a mediator of the default tenant, named by a digest prefix. */
function legacyToken(token: string) {
  const sha256 = createHash('sha256').update(token).digest('hex');
  return { name: `token-${sha256.slice(0, 8)}`, sha256, tenant: 'default', role: 'mediator', maxRequestsPerSecond: undefined };
}

/** Returns the ConfigError that loadConfig throws for `env` (fails the test if it does not throw one). */
function configError(env: Record<string, string | undefined>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`expected loadConfig to throw for ${JSON.stringify(env)}`);
}

function expectRejected(variable: string, value: string, extra: Record<string, string> = {}): void {
  const error = configError({ ...extra, [variable]: value });
  expect(error.variable).toBe(variable);
  expect(error.message).toContain(variable);
  expect(error.name).toBe('ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = loadConfig({});
    expect(config).toEqual({
      port: 3100,
      host: '0.0.0.0',
      databaseUrl: undefined,
      databasePoolSize: 10,
      databaseQueryTimeoutMs: 10_000,
      databaseConnectTimeoutMs: 60_000,
      dataDir: path.resolve('./.data'),
      embeddedPostgresPort: 0,
      auth: { tokensFile: undefined, tokens: [] },
      tls: undefined,
      redeliveryTimeoutMs: 60_000,
      heartbeatIntervalMs: 15_000,
      maxTakeMessages: 100,
      maxPayloadBytes: 4 * MiB,
      maxFrameBytes: 4 * MiB + ENVELOPE,
      maxSocketBufferBytes: 2 * (4 * MiB + ENVELOPE),
      shutdownTimeoutMs: 10_000,
      logLevel: 'info',
      redis: { mode: 'none' },
      redisCommandTimeoutMs: 2_000,
      sessionLeaseMs: expect.any(Number),
      instanceId: expect.any(String),
      push: {
        fcm: undefined,
        apns: undefined,
        webhook: undefined,
        title: 'New message',
        body: 'You have a new message',
        dataOnly: false,
        coalesceWindowMs: 10_000,
        maxAttempts: 5,
        retryBaseMs: 1_000,
        timeoutMs: 10_000,
      },
      retention: {
        messageTtlMs: 7 * 24 * 3600 * 1000,
        maxQueueMessages: 10_000,
        maxQueueBytes: 100 * MiB,
        expirySweepIntervalMs: 60_000,
        expirySweepBatch: 1_000,
      },
    });
  });

  it('does not read process.env when given an environment', () => {
    const saved = process.env.PORT;
    process.env.PORT = '4444';
    try {
      expect(loadConfig({}).port).toBe(3100);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '127.0.0.1',
      DATABASE_URL: 'postgres://user:pw@db.example:5432/mpr',
      DATABASE_POOL_SIZE: '20',
      DATA_DIR: '/var/lib/mpr',
      EMBEDDED_POSTGRES_PORT: '5544',
      AUTH_TOKENS: 'alpha, beta ,,gamma,',
      REDELIVERY_TIMEOUT_MS: '30000',
      HEARTBEAT_INTERVAL_MS: '5000',
      MAX_TAKE_MESSAGES: '250',
      MAX_PAYLOAD_BYTES: String(MiB),
      MAX_FRAME_BYTES: String(2 * MiB),
      MAX_SOCKET_BUFFER_BYTES: String(8 * MiB),
      SHUTDOWN_TIMEOUT_MS: '0',
      LOG_LEVEL: 'debug',
      DATABASE_QUERY_TIMEOUT_MS: '2500',
      DATABASE_CONNECT_TIMEOUT_MS: '5000',
      MESSAGE_TTL_MS: '86400000',
      MAX_QUEUE_MESSAGES: '500',
      MAX_QUEUE_BYTES: String(10 * MiB),
      EXPIRY_SWEEP_INTERVAL_MS: '5000',
      EXPIRY_SWEEP_BATCH: '200',
      PUSH_WEBHOOK_URL: 'https://notify.example/hook',
      PUSH_WEBHOOK_SECRET: 's3cret',
      PUSH_TITLE: 'Hello',
      PUSH_BODY: 'World',
      PUSH_DATA_ONLY: 'yes',
      PUSH_COALESCE_WINDOW_MS: '0',
      PUSH_MAX_ATTEMPTS: '3',
      PUSH_RETRY_BASE_MS: '50',
      PUSH_TIMEOUT_MS: '2000',
    });
    expect(config).toEqual({
      port: 8080,
      host: '127.0.0.1',
      databaseUrl: 'postgres://user:pw@db.example:5432/mpr',
      databasePoolSize: 20,
      dataDir: '/var/lib/mpr',
      embeddedPostgresPort: 5544,
      auth: { tokensFile: undefined, tokens: ['alpha', 'beta', 'gamma'].map(legacyToken) },
      tls: undefined,
      redeliveryTimeoutMs: 30_000,
      heartbeatIntervalMs: 5_000,
      maxTakeMessages: 250,
      maxPayloadBytes: MiB,
      maxFrameBytes: 2 * MiB,
      maxSocketBufferBytes: 8 * MiB,
      shutdownTimeoutMs: 0,
      logLevel: 'debug',
      redis: { mode: 'none' },
      redisCommandTimeoutMs: 2_000,
      sessionLeaseMs: expect.any(Number),
      instanceId: expect.any(String),
      databaseQueryTimeoutMs: 2_500,
      databaseConnectTimeoutMs: 5_000,
      retention: {
        messageTtlMs: 86_400_000,
        maxQueueMessages: 500,
        maxQueueBytes: 10 * MiB,
        expirySweepIntervalMs: 5_000,
        expirySweepBatch: 200,
      },
      push: {
        fcm: undefined,
        apns: undefined,
        webhook: { url: 'https://notify.example/hook', secret: 's3cret' },
        title: 'Hello',
        body: 'World',
        dataOnly: true,
        coalesceWindowMs: 0,
        maxAttempts: 3,
        retryBaseMs: 50,
        timeoutMs: 2_000,
      },
    });
  });

  it('accepts postgresql: URLs, resolves a relative DATA_DIR, and lower-cases LOG_LEVEL', () => {
    const config = loadConfig({ DATABASE_URL: 'postgresql://localhost/x', DATA_DIR: 'some/dir', LOG_LEVEL: 'WARN' });
    expect(config.databaseUrl).toBe('postgresql://localhost/x');
    expect(config.dataDir).toBe(path.resolve('some/dir'));
    expect(config.logLevel).toBe('warn');
  });

  it('treats empty and blank values as unset', () => {
    const blank = {
      PORT: '',
      HOST: ' ',
      DATABASE_URL: '',
      DATABASE_POOL_SIZE: '',
      DATA_DIR: '',
      EMBEDDED_POSTGRES_PORT: '  ',
      AUTH_TOKENS: '',
      REDELIVERY_TIMEOUT_MS: '',
      HEARTBEAT_INTERVAL_MS: '\t',
      MAX_TAKE_MESSAGES: '',
      MAX_PAYLOAD_BYTES: '',
      MAX_FRAME_BYTES: '',
      MAX_SOCKET_BUFFER_BYTES: '',
      SHUTDOWN_TIMEOUT_MS: '',
      LOG_LEVEL: '',
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: ' ',
      REDIS_NAT_MAP: '',
      REDIS_COMMAND_TIMEOUT_MS: '',
      SESSION_LEASE_MS: '',
      INSTANCE_ID: ' ',
    };
    expect({ ...loadConfig(blank), instanceId: 'x' }).toEqual({ ...loadConfig({}), instanceId: 'x' });
    expect(loadConfig({ AUTH_TOKENS: ' , ,' }).auth.tokens).toEqual([]);
  });

  it('reads REDIS_COMMAND_TIMEOUT_MS, 2 s by default', () => {
    expect(loadConfig({}).redisCommandTimeoutMs).toBe(2_000);
    expect(loadConfig({ REDIS_COMMAND_TIMEOUT_MS: '500' }).redisCommandTimeoutMs).toBe(500);
  });

  it('reads SESSION_LEASE_MS and INSTANCE_ID, with a random instance id by default', () => {
    expect(loadConfig({}).sessionLeaseMs).toBe(30_000);
    expect(loadConfig({ SESSION_LEASE_MS: '1500', INSTANCE_ID: 'server-a' })).toMatchObject({
      sessionLeaseMs: 1500,
      instanceId: 'server-a',
    });
    expect(loadConfig({}).instanceId).not.toBe(loadConfig({}).instanceId);
    expect(() => loadConfig({ SESSION_LEASE_MS: '10' })).toThrow(/SESSION_LEASE_MS/);
  });

  it('trims surrounding whitespace of values', () => {
    expect(loadConfig({ PORT: ' 8080 ' }).port).toBe(8080);
    expect(loadConfig({ LOG_LEVEL: ' error ' }).logLevel).toBe('error');
  });

  describe('integer variables', () => {
    const integers = [
      'PORT',
      'DATABASE_POOL_SIZE',
      'EMBEDDED_POSTGRES_PORT',
      'REDELIVERY_TIMEOUT_MS',
      'HEARTBEAT_INTERVAL_MS',
      'MAX_TAKE_MESSAGES',
      'MAX_PAYLOAD_BYTES',
      'MAX_FRAME_BYTES',
      'MAX_SOCKET_BUFFER_BYTES',
      'SHUTDOWN_TIMEOUT_MS',
      'REDIS_COMMAND_TIMEOUT_MS',
    ];

    it.each(integers)('%s must be an integer', (variable) => {
      for (const value of ['abc', '1.5', '1e3', '0x10', '10ms', '+5', '5 5', 'NaN', 'Infinity']) expectRejected(variable, value);
    });

    it.each(integers)('%s refuses a negative value', (variable) => {
      expectRejected(variable, '-1');
    });

    it.each([
      ['PORT', '65536'],
      ['EMBEDDED_POSTGRES_PORT', '70000'],
      ['DATABASE_POOL_SIZE', '1'],
      ['DATABASE_POOL_SIZE', '1001'],
      ['REDELIVERY_TIMEOUT_MS', '99'],
      ['HEARTBEAT_INTERVAL_MS', '0'],
      ['MAX_TAKE_MESSAGES', '0'],
      ['MAX_TAKE_MESSAGES', '10001'],
      ['MAX_PAYLOAD_BYTES', '1023'],
      ['MAX_PAYLOAD_BYTES', String(512 * MiB + 1)],
      ['MAX_FRAME_BYTES', String(1024 * MiB + 1)],
      ['REDIS_COMMAND_TIMEOUT_MS', '9'],
      ['REDIS_COMMAND_TIMEOUT_MS', '600001'],
      ['PORT', '99999999999999999999999'],
    ])('%s refuses out-of-range %s', (variable, value) => {
      expectRejected(variable, value);
    });

    it('accepts the bounds', () => {
      expect(loadConfig({ PORT: '0' }).port).toBe(0);
      expect(loadConfig({ PORT: '65535' }).port).toBe(65535);
      expect(loadConfig({ DATABASE_POOL_SIZE: '2' }).databasePoolSize).toBe(2);
      expect(loadConfig({ MAX_TAKE_MESSAGES: '1' }).maxTakeMessages).toBe(1);
      expect(loadConfig({ MAX_TAKE_MESSAGES: '10000' }).maxTakeMessages).toBe(10_000);
      expect(loadConfig({ REDELIVERY_TIMEOUT_MS: '100' }).redeliveryTimeoutMs).toBe(100);
      expect(loadConfig({ MAX_PAYLOAD_BYTES: '1024' }).maxPayloadBytes).toBe(1024);
    });

    it('names the variable and the bad value in the message', () => {
      const error = configError({ REDELIVERY_TIMEOUT_MS: 'soon' });
      expect(error.message).toContain('REDELIVERY_TIMEOUT_MS');
      expect(error.message).toContain('soon');
    });
  });

  describe('MAX_FRAME_BYTES and MAX_PAYLOAD_BYTES', () => {
    it('defaults the frame limit to the payload limit plus 64 KiB of envelope', () => {
      expect(loadConfig({ MAX_PAYLOAD_BYTES: '2048' }).maxFrameBytes).toBe(2048 + ENVELOPE);
      expect(loadConfig({ MAX_PAYLOAD_BYTES: String(MiB) }).maxFrameBytes).toBe(MiB + ENVELOPE);
    });

    it('accepts a frame limit of exactly payload + 64 KiB, or more', () => {
      expect(loadConfig({ MAX_PAYLOAD_BYTES: '2048', MAX_FRAME_BYTES: String(2048 + ENVELOPE) }).maxFrameBytes).toBe(2048 + ENVELOPE);
      expect(loadConfig({ MAX_PAYLOAD_BYTES: '2048', MAX_FRAME_BYTES: '70000' }).maxFrameBytes).toBe(70_000);
    });

    it('refuses a frame limit below payload + 64 KiB, naming MAX_FRAME_BYTES', () => {
      expectRejected('MAX_FRAME_BYTES', String(2048 + ENVELOPE - 1), { MAX_PAYLOAD_BYTES: '2048' });
      expectRejected('MAX_FRAME_BYTES', String(4 * MiB), {});
      const error = configError({ MAX_PAYLOAD_BYTES: String(MiB), MAX_FRAME_BYTES: String(MiB) });
      expect(error.variable).toBe('MAX_FRAME_BYTES');
      expect(error.message).toContain(String(MiB + ENVELOPE));
    });

    it('defaults the socket buffer bound to two frames and refuses one below a frame', () => {
      expect(loadConfig({ MAX_PAYLOAD_BYTES: '2048', MAX_FRAME_BYTES: '70000' }).maxSocketBufferBytes).toBe(140_000);
      expectRejected('MAX_SOCKET_BUFFER_BYTES', '69999', { MAX_PAYLOAD_BYTES: '2048', MAX_FRAME_BYTES: '70000' });
      expect(
        loadConfig({ MAX_PAYLOAD_BYTES: '2048', MAX_FRAME_BYTES: '70000', MAX_SOCKET_BUFFER_BYTES: '70000' }).maxSocketBufferBytes,
      ).toBe(70_000);
    });
  });

  describe('other variables', () => {
    it.each(['mysql://localhost/db', 'http://localhost:5432/db', 'not a url', 'localhost:5432'])('DATABASE_URL refuses %p', (value) => {
      expectRejected('DATABASE_URL', value);
    });

    it.each(['loud', 'trace', 'fatal', '1'])('LOG_LEVEL refuses %p', (value) => {
      expectRejected('LOG_LEVEL', value);
    });

    it('accepts every documented log level', () => {
      for (const level of ['error', 'warn', 'info', 'debug', 'verbose']) expect(loadConfig({ LOG_LEVEL: level }).logLevel).toBe(level);
    });

    it('ignores variables it does not know', () => {
      expect({ ...loadConfig({ SOMETHING_ELSE: 'x', NODE_ENV: 'production' }), instanceId: 'x' }).toEqual({
        ...loadConfig({}),
        instanceId: 'x',
      });
    });
  });

  describe('Redis variables', () => {
    it('is in-process when neither REDIS_URL nor REDIS_CLUSTER_NODES is set', () => {
      expect(loadConfig({}).redis).toEqual({ mode: 'none' });
    });

    it('reads REDIS_URL as a single node', () => {
      expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6380/0' }).redis).toEqual({ mode: 'single', url: 'redis://127.0.0.1:6380/0' });
      expect(loadConfig({ REDIS_URL: 'rediss://user:pw@redis.example:6380' }).redis).toEqual({
        mode: 'single',
        url: 'rediss://user:pw@redis.example:6380',
      });
    });

    it('reads REDIS_CLUSTER_NODES and REDIS_NAT_MAP', () => {
      expect(loadConfig({ REDIS_CLUSTER_NODES: 'redis-1:7000, 10.0.0.2:7001,,' }).redis).toEqual({
        mode: 'cluster',
        nodes: [
          { host: 'redis-1', port: 7000 },
          { host: '10.0.0.2', port: 7001 },
        ],
      });
      expect(
        loadConfig({
          REDIS_CLUSTER_NODES: '127.0.0.1:7000',
          REDIS_NAT_MAP: '172.20.0.11:6379=127.0.0.1:7000, 172.20.0.12:6379=localhost:7001',
        }).redis,
      ).toEqual({
        mode: 'cluster',
        nodes: [{ host: '127.0.0.1', port: 7000 }],
        natMap: { '172.20.0.11:6379': { host: '127.0.0.1', port: 7000 }, '172.20.0.12:6379': { host: 'localhost', port: 7001 } },
      });
    });

    it('refuses REDIS_URL together with REDIS_CLUSTER_NODES', () => {
      const error = configError({ REDIS_URL: 'redis://localhost:6379', REDIS_CLUSTER_NODES: 'localhost:7000' });
      expect(error.variable).toBe('REDIS_CLUSTER_NODES');
      expect(error.message).toContain('REDIS_URL');
    });

    it.each(['http://localhost:6379', 'not a url', 'localhost:6379'])('REDIS_URL refuses %p', (value) => {
      expectRejected('REDIS_URL', value);
    });

    it.each(['localhost', 'localhost:', ':7000', 'localhost:0', 'localhost:65536', 'localhost:70a', 'a:1:2', ',,'])(
      'REDIS_CLUSTER_NODES refuses %p',
      (value) => {
        expectRejected('REDIS_CLUSTER_NODES', value);
      },
    );

    it.each(['10.0.0.1:6379', '10.0.0.1:6379=', '10.0.0.1:6379=localhost', 'a:1=b:2=c:3', 'a:1=b:99999'])(
      'REDIS_NAT_MAP refuses %p',
      (value) => {
        expectRejected('REDIS_NAT_MAP', value, { REDIS_CLUSTER_NODES: 'localhost:7000' });
      },
    );

    it('refuses REDIS_NAT_MAP without REDIS_CLUSTER_NODES', () => {
      expectRejected('REDIS_NAT_MAP', 'a:1=b:2');
    });
  });

  describe('push credentials', () => {
    let dir: string;
    const account = (
      name: string,
      body: object = { project_id: name, client_email: `${name}@example.iam`, private_key: '-----BEGIN PRIVATE KEY-----' },
    ) => {
      const file = path.join(dir, `${name}.json`);
      fs.writeFileSync(file, JSON.stringify(body));
      return file;
    };
    beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-config-'))));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('reads one service-account file, a list per appId, or GOOGLE_APPLICATION_CREDENTIALS', () => {
      const one = account('one');
      expect(loadConfig({ FIREBASE_CREDENTIALS: one }).push.fcm).toEqual({ credentialFiles: { default: one } });
      const two = account('two');
      expect(loadConfig({ FIREBASE_CREDENTIALS: `com.example.a=${one}, default=${two}` }).push.fcm).toEqual({
        credentialFiles: { 'com.example.a': one, default: two },
      });
      expect(loadConfig({ GOOGLE_APPLICATION_CREDENTIALS: one }).push.fcm).toEqual({ credentialFiles: { default: one } });
    });

    it('stops at boot on a missing file, a file that is not a service account, a malformed list or a duplicate', () => {
      expect(() => loadConfig({ FIREBASE_CREDENTIALS: path.join(dir, 'missing.json') })).toThrow(
        /FIREBASE_CREDENTIALS names a file that cannot be read/,
      );
      expect(() => loadConfig({ FIREBASE_CREDENTIALS: account('bad', { hello: 1 }) })).toThrow(
        /FIREBASE_CREDENTIALS .*not a Firebase service-account key \(no "project_id"\)/,
      );
      const notJson = path.join(dir, 'not.json');
      fs.writeFileSync(notJson, 'nope');
      expect(() => loadConfig({ GOOGLE_APPLICATION_CREDENTIALS: notJson })).toThrow(/GOOGLE_APPLICATION_CREDENTIALS .*is not a JSON file/);
      expect(() => loadConfig({ FIREBASE_CREDENTIALS: `a=${account('x')},=${account('y')}` })).toThrow(
        /FIREBASE_CREDENTIALS must be a file path or a list of appId=path/,
      );
      expect(() => loadConfig({ FIREBASE_CREDENTIALS: `a=${account('x')},a=${account('y')}` })).toThrow(
        /FIREBASE_CREDENTIALS lists "a" twice/,
      );
    });

    it('requires the APNs key id, team id and topic with APNS_KEY_FILE, and only with it', () => {
      const key = path.join(dir, 'AuthKey.p8');
      fs.writeFileSync(key, '-----BEGIN PRIVATE KEY-----');
      const apns = { APNS_KEY_FILE: key, APNS_KEY_ID: 'KEY123', APNS_TEAM_ID: 'TEAM123', APNS_TOPIC: 'com.example.wallet' };
      expect(loadConfig(apns).push.apns).toEqual({
        keyFile: key,
        keyId: 'KEY123',
        teamId: 'TEAM123',
        topic: 'com.example.wallet',
        production: true,
      });
      expect(loadConfig({ ...apns, APNS_PRODUCTION: 'false' }).push.apns?.production).toBe(false);
      expect(() => loadConfig({ ...apns, APNS_TOPIC: '' })).toThrow(/APNS_TOPIC is required with APNS_KEY_FILE/);
      expect(() => loadConfig({ APNS_KEY_ID: 'KEY123' })).toThrow(/APNS_KEY_ID is only used with APNS_KEY_FILE/);
      expect(() => loadConfig({ ...apns, APNS_PRODUCTION: 'maybe' })).toThrow(/APNS_PRODUCTION must be true or false/);
    });

    it('refuses PUSH_WEBHOOK_SECRET without PUSH_WEBHOOK_URL, and a webhook URL that is not http(s)', () => {
      expect(() => loadConfig({ PUSH_WEBHOOK_SECRET: 'x' })).toThrow(/PUSH_WEBHOOK_SECRET is only used with PUSH_WEBHOOK_URL/);
      expect(() => loadConfig({ PUSH_WEBHOOK_URL: 'ftp://x/y' })).toThrow(/PUSH_WEBHOOK_URL must use http: or https:/);
    });
  });

  it('refuses out-of-range retention values, naming the variable', () => {
    expect(() => loadConfig({ MESSAGE_TTL_MS: '10' })).toThrow(/MESSAGE_TTL_MS must be between 1000/);
    expect(() => loadConfig({ MAX_QUEUE_MESSAGES: '0' })).toThrow(/MAX_QUEUE_MESSAGES/);
    expect(() => loadConfig({ MAX_QUEUE_BYTES: '100' })).toThrow(/MAX_QUEUE_BYTES/);
    expect(() => loadConfig({ EXPIRY_SWEEP_BATCH: 'lots' })).toThrow(/EXPIRY_SWEEP_BATCH must be an integer/);
    expect(() => loadConfig({ DATABASE_QUERY_TIMEOUT_MS: '5' })).toThrow(/DATABASE_QUERY_TIMEOUT_MS/);
  });

  describe('AUTH_TOKENS_FILE', () => {
    let dir: string;
    const digest = (token: string) => tokenDigest(token);
    const write = (body: unknown, name = 'tokens.json') => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, typeof body === 'string' ? body : JSON.stringify(body));
      return file;
    };
    const entry = (extra: Record<string, unknown> = {}) => ({
      name: 'mediator-a',
      sha256: digest('secret-a'),
      tenant: 'a',
      role: 'mediator',
      ...extra,
    });
    beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-tokens-'))));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('reads every entry: name, digest (lower-cased), tenant, role, and the optional rate', () => {
      const file = write({
        tokens: [
          entry({ maxRequestsPerSecond: 500 }),
          { name: 'grafana', sha256: digest('secret-m').toUpperCase(), tenant: 'a', role: 'monitor' },
          { name: 'mediator-b', sha256: digest('secret-b'), tenant: 'b.org_2', role: 'mediator' },
        ],
      });
      expect(loadConfig({ AUTH_TOKENS_FILE: file }).auth).toEqual({
        tokensFile: file,
        tokens: [
          { name: 'mediator-a', sha256: digest('secret-a'), tenant: 'a', role: 'mediator', maxRequestsPerSecond: 500 },
          { name: 'grafana', sha256: digest('secret-m'), tenant: 'a', role: 'monitor', maxRequestsPerSecond: undefined },
          { name: 'mediator-b', sha256: digest('secret-b'), tenant: 'b.org_2', role: 'mediator', maxRequestsPerSecond: undefined },
        ],
      });
      expect(loadConfig({ AUTH_TOKENS_FILE: write({ tokens: [] }, 'empty.json') }).auth.tokens).toEqual([]);
    });

    it('is a configuration error together with AUTH_TOKENS', () => {
      const error = configError({ AUTH_TOKENS_FILE: write({ tokens: [entry()] }), AUTH_TOKENS: 'legacy' });
      expect(error.variable).toBe('AUTH_TOKENS_FILE');
      expect(error.message).toMatch(/cannot be set together with AUTH_TOKENS/);
    });

    it('stops at a file that cannot be read, is not JSON, or has no tokens array', () => {
      expect(configError({ AUTH_TOKENS_FILE: path.join(dir, 'missing.json') }).message).toMatch(
        /AUTH_TOKENS_FILE names a file that cannot be read: .*missing\.json.*ENOENT/,
      );
      expect(configError({ AUTH_TOKENS_FILE: write('{"tokens": [', 'broken.json') }).message).toMatch(
        /AUTH_TOKENS_FILE .*broken\.json" is not JSON/,
      );
      expect(configError({ AUTH_TOKENS_FILE: write({ token: [] }, 'shape.json') }).message).toMatch(
        /must be a JSON object with a "tokens" array/,
      );
      expect(configError({ AUTH_TOKENS_FILE: write([entry()], 'array.json') }).message).toMatch(
        /must be a JSON object with a "tokens" array/,
      );
    });

    it.each([
      ['not an object', 'x', /tokens\[1\] must be an object/],
      ['a missing name', { ...entry(), name: undefined }, /tokens\[1\] field "name" is required/],
      ['a name with a space', entry({ name: 'mediator a' }), /tokens\[1\] field "name" must be 1 to 64 characters/],
      [
        'a repeated name',
        entry({ sha256: digest('other') }),
        /tokens\[1\] \("mediator-a"\) field "name" repeats the name of an earlier entry/,
      ],
      [
        'a digest that is not hex',
        entry({ name: 'x', sha256: 'secret-a' }),
        /tokens\[1\] \("x"\) field "sha256" must be the SHA-256 of the token as 64 hexadecimal characters/,
      ],
      ['a short digest', entry({ name: 'x', sha256: digest('y').slice(1) }), /tokens\[1\] \("x"\) field "sha256" must be/],
      ['a repeated digest', entry({ name: 'x' }), /tokens\[1\] \("x"\) field "sha256" repeats the digest of an earlier entry/],
      ['a missing tenant', { name: 'x', sha256: digest('y'), role: 'mediator' }, /tokens\[1\] \("x"\) field "tenant" is required/],
      [
        'a tenant with a colon',
        entry({ name: 'x', sha256: digest('y'), tenant: 'a:b' }),
        /tokens\[1\] \("x"\) field "tenant" must be 1 to 64 characters/,
      ],
      ['a tenant with braces', entry({ name: 'x', sha256: digest('y'), tenant: '{a}' }), /field "tenant" must be/],
      [
        'an unknown role',
        entry({ name: 'x', sha256: digest('y'), role: 'admin' }),
        /tokens\[1\] \("x"\) field "role" must be one of "mediator", "monitor"/,
      ],
      [
        'a rate of zero',
        entry({ name: 'x', sha256: digest('y'), maxRequestsPerSecond: 0 }),
        /field "maxRequestsPerSecond" must be an integer from 1 to 1000000/,
      ],
      [
        'a fractional rate',
        entry({ name: 'x', sha256: digest('y'), maxRequestsPerSecond: 2.5 }),
        /field "maxRequestsPerSecond" must be an integer/,
      ],
      [
        'a rate as a string',
        entry({ name: 'x', sha256: digest('y'), maxRequestsPerSecond: '100' }),
        /field "maxRequestsPerSecond" must be an integer/,
      ],
      [
        'a misspelt field',
        entry({ name: 'x', sha256: digest('y'), maxRequestPerSecond: 10 }),
        /tokens\[1\] \("x"\) field "maxRequestPerSecond" is not a known field/,
      ],
    ])('stops at %s, naming the entry and the field', (_what, second, pattern) => {
      const file = write({ tokens: [entry(), second] });
      const error = configError({ AUTH_TOKENS_FILE: file });
      expect(error.variable).toBe('AUTH_TOKENS_FILE');
      expect(error.message).toContain(file);
      expect(error.message).toMatch(pattern);
    });

    it('never puts a token digest into an error message', () => {
      const error = configError({ AUTH_TOKENS_FILE: write({ tokens: [entry({ role: 'root' })] }) });
      expect(error.message).not.toContain(digest('secret-a'));
    });
  });

  describe('TLS_CERT_FILE and TLS_KEY_FILE', () => {
    let dir: string;
    const pem = (name: string, subject = '/CN=localhost') => {
      const key = path.join(dir, `${name}.key`);
      const cert = path.join(dir, `${name}.crt`);
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', subject, '-keyout', key, '-out', cert],
        { stdio: 'ignore' },
      );
      return { key, cert };
    };
    beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-tls-'))));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('reads a certificate and its key, as absolute paths', () => {
      const { key, cert } = pem('one');
      expect(loadConfig({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key }).tls).toEqual({ certFile: cert, keyFile: key });
    });

    it('needs both, readable, a certificate and the key that goes with it, naming the variable at fault', () => {
      const one = pem('a');
      const two = pem('b');
      expect(configError({ TLS_CERT_FILE: one.cert }).variable).toBe('TLS_KEY_FILE');
      expect(configError({ TLS_KEY_FILE: one.key }).variable).toBe('TLS_CERT_FILE');
      expect(configError({ TLS_CERT_FILE: path.join(dir, 'none.crt'), TLS_KEY_FILE: one.key }).message).toMatch(
        /TLS_CERT_FILE names a file that cannot be read/,
      );
      expect(configError({ TLS_CERT_FILE: one.key, TLS_KEY_FILE: one.key }).message).toMatch(/TLS_CERT_FILE .* holds no PEM certificate/);
      expect(configError({ TLS_CERT_FILE: one.cert, TLS_KEY_FILE: one.cert }).message).toMatch(/TLS_KEY_FILE .* holds no PEM private key/);
      expect(configError({ TLS_CERT_FILE: one.cert, TLS_KEY_FILE: two.key }).message).toMatch(
        /TLS_KEY_FILE .* is not the private key of the certificate in TLS_CERT_FILE/,
      );
    });
  });
});
