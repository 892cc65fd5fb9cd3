import { ConnectionRef, RedisConfig, refKey } from '../../apps/server/src/config';
import { MessagesAvailableEvent } from '../../apps/server/src/pubsub';
import { RedisPubSubAdapter } from '../../apps/server/src/pubsub/redis-pubsub.adapter';
import { RedisConnections } from '../../apps/server/src/redis';
import { RedisNodeProcess, startRedisCluster, startRedisSingle } from '@didcomm-mpr/test-kit';

jest.setTimeout(60_000);

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Connection `connectionId` of `tenant` (the default tenant unless said otherwise). */
const r = (connectionId: string, tenant = 'default'): ConnectionRef => ({ tenant, connectionId });
/** Where A's received events of that connection are kept. */
const key = (connectionId: string, tenant?: string): string => refKey(r(connectionId, tenant));

function eventFor(connectionId: string, n = 1, tenant = 'default'): MessagesAvailableEvent {
  return {
    ref: r(connectionId, tenant),
    messages: [
      { id: `m-${connectionId}-${n}`, receivedAt: '2026-01-02T03:04:05.678Z', payload: JSON.stringify({ hello: connectionId, n }) },
      { id: `m-${connectionId}-${n}-big`, receivedAt: '2026-01-02T03:04:05.679Z', claimedFor: 7 },
    ],
  };
}

interface Setup {
  config: Exclude<RedisConfig, { mode: 'none' }>;
  /** The node restarted by the resilience test. */
  restartable: RedisNodeProcess;
  /** Resolves when the servers are healthy again after a restart. */
  afterRestart: () => Promise<void>;
  close: () => Promise<void>;
}

const modes: [string, () => Promise<Setup>][] = [
  [
    'single node',
    async () => {
      const redis = await startRedisSingle();
      return {
        config: { mode: 'single', url: redis.url },
        restartable: redis.node,
        afterRestart: async () => undefined,
        close: redis.close,
      };
    },
  ],
  [
    '3-master cluster',
    async () => {
      const cluster = await startRedisCluster(3);
      return {
        config: { mode: 'cluster', nodes: cluster.nodes.slice(0, 2).map((node) => ({ host: '127.0.0.1', port: node.port })) },
        restartable: cluster.nodes[0],
        afterRestart: cluster.waitHealthy,
        close: cluster.close,
      };
    },
  ],
];

describe.each(modes)('RedisPubSubAdapter on a %s', (_name, start) => {
  let setup: Setup | undefined;
  let a: RedisPubSubAdapter;
  let b: RedisPubSubAdapter;
  let connections: RedisConnections[] = [];
  const received = new Map<string, MessagesAvailableEvent[]>();
  const resubscribed: ConnectionRef[][] = [];

  beforeAll(async () => {
    setup = await start();
    connections = [new RedisConnections(setup.config, 'test-a'), new RedisConnections(setup.config, 'test-b')];
    a = new RedisPubSubAdapter(connections[0]);
    b = new RedisPubSubAdapter(connections[1]);
    a.onMessagesAvailable((event) => {
      const list = received.get(refKey(event.ref)) ?? [];
      list.push(event);
      received.set(refKey(event.ref), list);
    });
    a.onResubscribed((ids) => resubscribed.push(ids));
    await waitUntil('both adapters are up', () => a.health().status === 'up' && b.health().status === 'up');
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await Promise.all(connections.map((redis) => redis.close()));
    await setup?.close();
  });

  it('reports its mode and delivers a publish of B to the subscriber A, once, deep-equal', async () => {
    expect(a.health()).toEqual({ status: 'up', mode: setup!.config.mode === 'cluster' ? 'redis-cluster' : 'redis' });
    await a.subscribe(r('c1'));
    const event = eventFor('c1');
    await expect(b.publish(event)).resolves.toBe(1);
    await waitUntil('c1 is received', () => (received.get(key('c1'))?.length ?? 0) > 0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(received.get(key('c1'))).toEqual([event]);
  });

  it('resolves 0 for a connection nobody subscribed, and 0 after A unsubscribed', async () => {
    await expect(b.publish(eventFor('nobody'))).resolves.toBe(0);
    await a.unsubscribe(r('c1'));
    await expect(b.publish(eventFor('c1', 2))).resolves.toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(received.get(key('c1'))).toHaveLength(1);
    expect(received.has(key('nobody'))).toBe(false);
  });

  it('a subscribe and an unsubscribe of the same connection in one tick: the last one wins', async () => {
    const done = [
      a.subscribe(r('flip')),
      a.unsubscribe(r('flip')),
      a.subscribe(r('flop')),
      a.unsubscribe(r('flop')),
      a.subscribe(r('flop')),
    ];
    await Promise.all(done);
    await expect(b.publish(eventFor('flip'))).resolves.toBe(0);
    await expect(b.publish(eventFor('flop'))).resolves.toBe(1);
    await a.unsubscribe(r('flop'));
  });

  it('handles 5,000 subscriptions on A and 5,000 publishes from B, each received once', async () => {
    const ids = Array.from({ length: 5000 }, (_, i) => `bulk-${i}`);
    let started = Date.now();
    await Promise.all(ids.map((id) => a.subscribe(r(id))));
    const subscribeMs = Date.now() - started;

    started = Date.now();
    const counts = await Promise.all(ids.map((id) => b.publish(eventFor(id))));
    const publishMs = Date.now() - started;
    expect(counts.every((count) => count === 1)).toBe(true);
    await waitUntil('every bulk event is received', () => ids.every((id) => received.has(key(id))), 10_000);
    const receiveMs = Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const id of ids) expect(received.get(key(id))).toEqual([eventFor(id)]);

    started = Date.now();
    await Promise.all(ids.map((id) => a.unsubscribe(r(id))));
    const unsubscribeMs = Date.now() - started;
    const after = await Promise.all(ids.slice(0, 100).map((id) => b.publish(eventFor(id, 2))));
    expect(after.every((count) => count === 0)).toBe(true);
    console.log(
      `[${setup!.config.mode}] 5,000 subscribes: ${subscribeMs} ms; 5,000 publishes: ${publishMs} ms ` +
        `(all received after ${receiveMs} ms); 5,000 unsubscribes: ${unsubscribeMs} ms`,
    );
  });

  it('restores A’s subscriptions by itself after a Redis node restart, going degraded then up', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `restart-${i}`);
    await Promise.all(ids.map((id) => a.subscribe(r(id))));
    const before = await Promise.all(ids.map((id) => b.publish(eventFor(id))));
    expect(before.every((count) => count === 1)).toBe(true);
    resubscribed.length = 0;

    const states: string[] = [a.health().status];
    const watch = setInterval(() => {
      const status = a.health().status;
      if (states[states.length - 1] !== status) states.push(status);
    }, 10);
    try {
      await setup!.restartable.stop();
      await waitUntil('A reports degraded', () => a.health().status === 'degraded', 10_000);

      // While the node is down a publish to it rejects quickly (the caller logs it; the message is in PostgreSQL).
      const downId = ids[0];
      let startedAt = Date.now();
      if (setup!.config.mode === 'single') {
        await expect(b.publish(eventFor(downId, 2))).rejects.toThrow();
      } else {
        const results = await Promise.allSettled(ids.map((id) => b.publish(eventFor(id, 2))));
        expect(results.some((result) => result.status === 'rejected')).toBe(true);
      }
      expect(Date.now() - startedAt).toBeLessThan(3000);

      await setup!.restartable.start();
      await setup!.afterRestart();
      startedAt = Date.now();
      await waitUntil('A reports up again', () => a.health().status === 'up', 20_000);
      await waitUntil('B reports up again', () => b.health().status === 'up', 20_000);
      const upMs = Date.now() - startedAt;
      await waitUntil('A reported its restored subscriptions', () => resubscribed.length > 0, 5_000);
      expect(resubscribed[resubscribed.length - 1]).toEqual(expect.arrayContaining(ids.map((id) => r(id))));

      for (const id of ids) received.delete(key(id));
      let counts: number[] = [];
      await waitUntil(
        'every restored subscription receives',
        async () => {
          counts = await Promise.all(ids.map((id) => b.publish(eventFor(id, 3)).catch(() => -1)));
          return counts.every((count) => count === 1);
        },
        10_000,
      );
      await waitUntil('A receives on every restored subscription', () => ids.every((id) => received.has(key(id))), 5_000);
      for (const id of ids) expect(received.get(key(id))?.[received.get(key(id))!.length - 1]).toEqual(eventFor(id, 3));
      console.log(`[${setup!.config.mode}] health after restart: ${states.join(' -> ')}; up ${upMs} ms after cluster ok`);
    } finally {
      clearInterval(watch);
    }
    expect(states[0]).toBe('up');
    expect(states).toContain('degraded');
    expect(states[states.length - 1]).toBe('up');
  });

  it('keeps the channels of the same connectionId in two tenants apart, and of ids that contain the separators', async () => {
    const pairs: [ConnectionRef, ConnectionRef][] = [
      [r('same', 'tenant-a'), r('same', 'tenant-b')],
      [r('b:c', 'a'), r('c', 'a:b')],
      [r('}x{', 'a'), r('x', 'a}')],
      [r('%3A', 'a'), r(':', 'a')],
    ];
    for (const [subscribed, other] of pairs) {
      await a.subscribe(subscribed);
      await expect(b.publish({ ...eventFor('', 1), ref: other })).resolves.toBe(0);
      const event = { ...eventFor('', 2), ref: subscribed };
      await expect(b.publish(event)).resolves.toBe(1);
      await waitUntil('the subscribed connection receives', () => received.has(refKey(subscribed)));
      expect(received.get(refKey(subscribed))).toEqual([event]);
      expect(received.has(refKey(other))).toBe(false);
      await a.unsubscribe(subscribed);
    }
  });
});
