import { RedisClusterProcesses, RedisSingle, startRedisCluster, startRedisSingle, TcpProxy } from '@didcomm-mpr/test-kit';
import { MetricsService } from '../../apps/server/src/metrics';
import { RedisConnections } from '../../apps/server/src/redis';

jest.setTimeout(60_000);

const DEADLINE_MS = 500;
/** "Within the deadline": its timer, plus room for a busy two-core machine. */
const LATE_MS = DEADLINE_MS + 1_500;

async function waitUntil(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function outcome(work: Promise<unknown>): Promise<{ ok: boolean; error?: string; ms: number }> {
  const started = Date.now();
  return work.then(
    () => ({ ok: true, ms: Date.now() - started }),
    (error: Error) => ({ ok: false, error: error.name, ms: Date.now() - started }),
  );
}

async function metric(metrics: MetricsService, name: string, connection: string): Promise<number> {
  const values = (await metrics.registry.getSingleMetric(name)!.get()).values;
  return values.find((value) => value.labels.connection === connection)?.value ?? 0;
}

/**
 * The Redis module's deadline and in-flight bound, measured against a real redis-server behind a proxy that stalls:
 * the connection stays open, nothing answers, nothing resets (the bytes wait, as TCP does in a partition).
 */
describe('Redis command deadline and in-flight bound', () => {
  describe('single node', () => {
    let redis: RedisSingle;
    let proxy: TcpProxy;
    let connections: RedisConnections;
    const metrics = new MetricsService();

    beforeAll(async () => {
      redis = await startRedisSingle();
      proxy = await TcpProxy.start('127.0.0.1', Number(new URL(redis.url).port));
      connections = new RedisConnections({ mode: 'single', url: `redis://127.0.0.1:${proxy.port}` }, 'deadline-test', {
        commandTimeoutMs: DEADLINE_MS,
        maxInFlight: 20,
        metrics,
      });
      await waitUntil('connected', () => connections.commands.status === 'ready');
    });
    afterAll(async () => {
      await proxy?.restore();
      await connections?.close();
      await proxy?.close();
      await redis?.close();
    });

    it('fails every command of a stall within the deadline, refuses beyond the bound at once, and recovers after healing', async () => {
      await connections.commands.set('k', 'before');
      proxy.stall('hold');

      const results = await Promise.all(Array.from({ length: 50 }, () => outcome(connections.commands.get('k'))));
      const refused = results.filter((result) => result.error === 'RedisOverloadedError');
      const timedOut = results.filter((result) => result.error === 'RedisCommandTimeoutError');
      // 20 waited for Redis and got the deadline; the 30 beyond the bound were refused without waiting.
      expect(refused).toHaveLength(30);
      expect(timedOut).toHaveLength(20);
      for (const result of refused) expect(result.ms).toBeLessThan(DEADLINE_MS);
      for (const result of timedOut) {
        expect(result.ms).toBeGreaterThanOrEqual(DEADLINE_MS - 5);
        expect(result.ms).toBeLessThan(LATE_MS);
      }
      expect(connections.stalled('commands')).toBe(true);
      expect(connections.ready()).toBe(false);
      expect(await metric(metrics, 'mpr_redis_commands_refused_total', 'commands')).toBe(30);
      expect(await metric(metrics, 'mpr_redis_command_timeouts_total', 'commands')).toBeGreaterThanOrEqual(20);
      expect(await metric(metrics, 'mpr_redis_commands_in_flight', 'commands')).toBeLessThanOrEqual(20);

      // A script (defineCommand: EVALSHA, then EVAL) and a publish are bounded the same way.
      connections.commands.defineCommand('deadlineTestScript', { numberOfKeys: 1, lua: "return redis.call('GET', KEYS[1])" });
      const script = await outcome(
        (connections.commands as unknown as { deadlineTestScript(key: string): Promise<unknown> }).deadlineTestScript('k'),
      );
      const publish = await outcome(connections.commands.publish('channel', 'x'));
      for (const result of [script, publish]) {
        expect(result.ok).toBe(false);
        expect(result.ms).toBeLessThan(LATE_MS);
      }

      await proxy.restore();
      await waitUntil('the connection answers again', () => connections.ready());
      await expect(connections.commands.get('k')).resolves.toBe('before');
      await waitUntil('nothing is waiting any more', () => !connections.stalled('commands'));
      expect(await metric(metrics, 'mpr_redis_commands_in_flight', 'commands')).toBe(0);
    });

    it('bounds SUBSCRIBE on the subscriber connection too', async () => {
      await waitUntil('subscriber ready', () => connections.subscriber.status === 'ready');
      proxy.stall('hold');
      const result = await outcome((connections.subscriber as import('ioredis').Redis).subscribe('deadline-test-channel'));
      expect(result).toMatchObject({ ok: false, error: 'RedisCommandTimeoutError' });
      expect(result.ms).toBeLessThan(LATE_MS);
      expect(connections.ready()).toBe(false);
      await proxy.restore();
      await waitUntil('both connections answer again', () => connections.ready());
    });
  });

  describe('cluster', () => {
    let cluster: RedisClusterProcesses;
    let proxy: TcpProxy;
    let connections: RedisConnections | undefined;

    beforeAll(async () => {
      cluster = await startRedisCluster(3);
      proxy = await TcpProxy.start('127.0.0.1', cluster.nodes[0].port);
    });
    afterAll(async () => {
      await proxy?.restore();
      await connections?.close();
      await proxy?.close();
      await cluster?.close();
    });

    it("bounds a command waiting in the cluster's offline queue (ioredis' commandTimeout would not)", async () => {
      // The only seed is silent: the cluster never learns its slots, and commands wait in its offline queue.
      proxy.stall('hold');
      connections = new RedisConnections({ mode: 'cluster', nodes: [{ host: '127.0.0.1', port: proxy.port }] }, 'deadline-cluster', {
        commandTimeoutMs: DEADLINE_MS,
      });
      const result = await outcome(connections.commands.get('k'));
      expect(result).toMatchObject({ ok: false, error: 'RedisCommandTimeoutError' });
      expect(result.ms).toBeLessThan(LATE_MS);

      await proxy.restore();
      await waitUntil('the cluster is ready', () => connections!.commands.status === 'ready', 20_000);
      await expect(connections.commands.set('k', 'v')).resolves.toBe('OK');
    });
  });
});
