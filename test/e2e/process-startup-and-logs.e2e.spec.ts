import { createTestDatabase, findFreePort, JsonRpcWsClient, RpcCallError, ServerProcess, TcpProxy, tail } from '@didcomm-mpr/test-kit';

/**
 * The server process's own output and its start-up: every line it writes is one JSON object (standard level, instance
 * id), also when Redis is down at boot (no "[ioredis] Unhandled error event" on stderr, the outage logged once); with
 * PostgreSQL unreachable at boot it retries for DATABASE_CONNECT_TIMEOUT_MS, then exits naming host and port only, and
 * it starts normally when PostgreSQL appears during the retries.
 */

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];
const databases: { drop: () => Promise<void> }[] = [];

interface LogLine {
  level: string;
  instanceId?: string;
  context?: string;
  message: string;
  [field: string]: unknown;
}

/** Every line of `text` as a JSON log object; fails naming the first line that is not one. */
function jsonLines(text: string, stream: string): LogLine[] {
  const lines = text.split('\n').filter((line) => line.length > 0);
  return lines.map((line) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new Error(`a line on ${stream} is not JSON: ${line.slice(0, 300)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new Error(`a line on ${stream} is not a JSON object: ${line.slice(0, 300)}`);
    const entry = parsed as LogLine;
    if (!LEVELS.includes(entry.level) || typeof entry.message !== 'string')
      throw new Error(`a line on ${stream} has no standard level or no message: ${line.slice(0, 300)}`);
    return entry;
  });
}

/** A loopback port nothing listens on (taken free, then left closed). */
const closedPort = () => findFreePort();

async function waitForOutput(server: ServerProcess, pattern: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(server.output())) {
    if (server.exited()) throw new Error(`the server exited before its output matched ${pattern}:\n${tail(server.output())}`);
    if (Date.now() > deadline)
      throw new Error(`the server's output did not match ${pattern} within ${timeoutMs} ms:\n${tail(server.output())}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function freshDatabaseUrl(): Promise<string> {
  const database = await createTestDatabase();
  databases.push(database);
  return database.url;
}

afterAll(async () => {
  await ServerProcess.stopAll();
  await Promise.all(databases.map((database) => database.drop().catch(() => undefined)));
}, 60_000);

describe('the server process output', () => {
  it('writes only JSON lines, with standard levels and the instance id, in a run with Redis down at boot', async () => {
    const redisPort = await closedPort();
    const server = await ServerProcess.start({
      env: {
        DATABASE_URL: await freshDatabaseUrl(),
        REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        INSTANCE_ID: 'logs-1',
        SESSION_LEASE_MS: '900',
      },
    });
    const client = await JsonRpcWsClient.connect(server.wsUrl);
    try {
      // Work that reaches Redis while it is away: sessions fail with the retryable error, adds still commit.
      await expect(client.call('addLiveSession', { connectionId: 'c', sessionId: 's' })).rejects.toBeInstanceOf(RpcCallError);
      expect(await client.call('addMessage', { connectionId: 'c', recipientDids: ['did:a'], payload: { n: 1 } })).toHaveProperty(
        'messageId',
      );
      expect((await fetch(`${server.httpUrl}/health/ready`)).status).toBe(200);
      // Several lease periods (300 ms each) and Redis reconnection attempts go by.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
    } finally {
      await client.close();
    }
    server.kill('SIGTERM');
    expect(await server.waitForExit(20_000)).toEqual({ code: 0, signal: null });

    expect(server.errorOutput()).not.toContain('[ioredis]');
    jsonLines(server.errorOutput(), 'stderr');
    const lines = jsonLines(server.output(), 'stdout and stderr');
    expect(lines.length).toBeGreaterThan(5);
    expect(lines.filter((line) => line.instanceId !== 'logs-1')).toEqual([]);
    expect(lines.some((line) => line.level === 'info')).toBe(true);
    // The outage is logged once per connection (commands, subscriber), not once per reconnection attempt, and the
    // lease's failures once for the outage, not once per tick.
    const redisErrors = lines.filter((line) => line.context === 'Redis' && line.message.includes(`127.0.0.1:${redisPort}`));
    expect(redisErrors.length).toBeGreaterThan(0);
    expect(redisErrors.length).toBeLessThanOrEqual(2);
    expect(lines.filter((line) => line.message.startsWith('Session lease maintenance failed'))).toHaveLength(1);
  }, 60_000);
});

describe('start-up with PostgreSQL not yet up', () => {
  it('retries for DATABASE_CONNECT_TIMEOUT_MS, logging each attempt once, then exits naming host and port, never the password', async () => {
    const port = await closedPort();
    const server = await ServerProcess.start({
      env: { DATABASE_URL: `postgres://mpr:hunter2-secret@127.0.0.1:${port}/mpr`, DATABASE_CONNECT_TIMEOUT_MS: '1500' },
      waitForHealth: false,
    });
    const exit = await server.waitForExit(45_000);
    const output = server.output();
    expect({ exit, output: exit.code === 1 ? '' : tail(output) }).toEqual({ exit: { code: 1, signal: null }, output: '' });
    const lines = jsonLines(output, 'stdout and stderr');
    const attempts = lines.filter((line) => line.message.startsWith(`PostgreSQL at 127.0.0.1:${port} is not reachable yet`));
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    const numbers = attempts.map((line) => Number(/attempt (\d+)/.exec(line.message)![1]));
    expect(numbers).toEqual(numbers.map((_, i) => i + 1));
    const fatal = lines.find((line) => line.level === 'fatal')!;
    expect(fatal.message).toContain(`PostgreSQL at 127.0.0.1:${port} could not be reached within DATABASE_CONNECT_TIMEOUT_MS (1500 ms`);
    expect(output).not.toContain('hunter2');
    expect(output).not.toContain('Listening on');
  }, 60_000);

  it('starts normally when PostgreSQL appears during the retries', async () => {
    const target = new URL(await freshDatabaseUrl());
    const proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    await proxy.cut(); // nothing listens on the proxy's port yet
    try {
      target.host = `127.0.0.1:${proxy.port}`;
      const server = await ServerProcess.start({
        env: { DATABASE_URL: target.toString(), DATABASE_CONNECT_TIMEOUT_MS: '60000' },
        waitForHealth: false,
      });
      await waitForOutput(server, /is not reachable yet \(attempt 2/, 30_000);
      expect((await fetch(`${server.httpUrl}/health/live`).catch(() => undefined))?.status).toBeUndefined(); // not serving yet
      await proxy.restore();
      await waitForOutput(server, /Listening on/, 30_000);
      expect(server.output()).toMatch(new RegExp(`PostgreSQL at 127.0.0.1:${proxy.port} answered \\(attempt \\d+\\)`));
      expect((await fetch(`${server.httpUrl}/health/ready`)).status).toBe(200);
      const client = await JsonRpcWsClient.connect(server.wsUrl);
      expect(await client.call('addMessage', { connectionId: 'late', recipientDids: ['did:a'], payload: {} })).toHaveProperty('messageId');
      await client.close();
      jsonLines(server.output(), 'stdout and stderr');
      server.kill('SIGTERM');
      expect(await server.waitForExit(20_000)).toEqual({ code: 0, signal: null });
    } finally {
      await proxy.close();
    }
  }, 90_000);
});
