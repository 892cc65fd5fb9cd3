import Redis, { Cluster } from 'ioredis';
import { startRedisCluster, startRedisSingle } from '@didcomm-mpr/test-kit';
import { RedisPushWindowStore } from './redis-push-window.store';

jest.setTimeout(60_000);

/** A decision of connection `connectionId` of `tenant` (t1 unless said otherwise). */
const fold = (connectionId: string, messageId: string, tenant = 't1') => ({ ref: { tenant, connectionId }, messageId });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each([
  [
    'a single node',
    async () => {
      const redis = await startRedisSingle();
      return { client: new Redis(redis.url) as Redis | Cluster, close: () => redis.close() };
    },
  ],
  [
    'a 3-master cluster',
    async () => {
      const cluster = await startRedisCluster(3);
      const seeds = cluster.seeds.split(',').map((seed) => ({ host: seed.split(':')[0], port: Number(seed.split(':')[1]) }));
      return { client: new Cluster(seeds) as Redis | Cluster, close: () => cluster.close() };
    },
  ],
])('RedisPushWindowStore on %s', (_name, start) => {
  let redis: { client: Redis | Cluster; close: () => Promise<void> };
  let store: RedisPushWindowStore;

  beforeAll(async () => {
    redis = await start();
    store = new RedisPushWindowStore(redis.client);
  });

  afterAll(async () => {
    redis?.client.disconnect();
    await redis?.close();
  });

  it('opens or folds in one step, one window per key, every connection folded kept', async () => {
    const key = `device-${Math.random()}`;
    const calls = [fold('a', 'm1'), fold('b', 'm2'), fold('a', 'm3')];
    const opened = await Promise.all(calls.map((call) => store.openOrFold(key, 300, call)));
    expect(opened.filter(Boolean)).toHaveLength(1);
    // Whichever call opened the window, each other call's connection is folded in, with its latest message.
    const foldedCalls = calls.filter((_, i) => !opened[i]);
    const expected = new Map(foldedCalls.map((call) => [call.ref.connectionId, call.messageId]));
    const folded = await store.takeFolded(key);
    expect(new Map(folded.map((f) => [f.ref.connectionId, f.messageId]))).toEqual(expected);
    expect(await store.takeFolded(key)).toEqual([]);
    await sleep(400);
    expect(await store.openOrFold(key, 300, fold('a', 'm4'))).toBe(true);
  });

  it('clears the window and only the starting connection of the folds', async () => {
    const key = `device-${Math.random()}`;
    await store.openOrFold(key, 10_000, fold('a', 'm1'));
    await store.openOrFold(key, 10_000, fold('a', 'm2'));
    await store.openOrFold(key, 10_000, fold('b', 'm3'));
    await store.clear(key, { tenant: 't1', connectionId: 'a' });
    expect(await store.openOrFold(key, 10_000, fold('c', 'm4'))).toBe(true);
    expect(await store.takeFolded(key)).toEqual([fold('b', 'm3')]);
  });

  it('keeps the same connectionId of two tenants apart, and a connectionId with separators whole', async () => {
    const key = `device-${Math.random()}`;
    await store.openOrFold(key, 10_000, fold('a', 'm1'));
    await store.openOrFold(key, 10_000, fold('a', 'm2', 't1'));
    await store.openOrFold(key, 10_000, fold('a', 'm3', 't2'));
    await store.openOrFold(key, 10_000, fold('x:{y}', 'm4', 't2'));
    await store.clear(key, { tenant: 't1', connectionId: 'a' });
    const folded = await store.takeFolded(key);
    expect(folded.sort((x, y) => x.ref.connectionId.localeCompare(y.ref.connectionId))).toEqual([
      fold('a', 'm3', 't2'),
      fold('x:{y}', 'm4', 't2'),
    ]);
  });
});
