import { FleetRedis, JsonRpcWsClient, REDIS_TOPOLOGIES } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

jest.setTimeout(60_000);

/** Two server instances on one PostgreSQL, connected by Redis: an add on B reaches the live session on A. */
describe.each(REDIS_TOPOLOGIES)('two instances over %s', (_name, startRedis) => {
  let redis: FleetRedis;
  let a: TestServer;
  let b: TestServer;
  const clients: JsonRpcWsClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    a = await startTestServer(redis.env);
    b = await startTestServer(redis.env, a.databaseUrl);
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await b?.stop();
    await a?.close();
    await redis?.close();
  });

  it('delivers a message added on B to the holder on A, once, and reports the Redis transport in /health', async () => {
    const holder = await JsonRpcWsClient.connect(a.wsUrl);
    const sender = await JsonRpcWsClient.connect(b.wsUrl);
    clients.push(holder, sender);
    await holder.call('addLiveSession', { connectionId: 'c-a', sessionId: 's' });
    const payload = { ciphertext: 'from B', n: [1, 2, 3] };
    const { messageId } = await sender.call<{ messageId: string }>('addMessage', {
      connectionId: 'c-a',
      recipientDids: ['did:x'],
      payload,
    });
    await holder.waitFor(() => holder.notifiedIds('c-a').includes(messageId), 5000, 'the cross-instance notification');
    expect(holder.notifications()).toEqual([
      { connectionId: 'c-a', messages: [{ id: messageId, receivedAt: expect.any(String), encryptedMessage: payload }] },
    ]);
    expect(await sender.call('getAvailableMessageCount', { connectionId: 'c-a' })).toBe(0);
    // Nobody holds c-b: the message stays pending and is not pushed anywhere.
    await sender.call('addMessage', { connectionId: 'c-b', recipientDids: ['did:x'], payload });
    expect(await holder.call('getAvailableMessageCount', { connectionId: 'c-b' })).toBe(1);
    const health = (await (await fetch(`${a.httpUrl}/health`)).json()) as {
      status: string;
      checks: { pubsub: { status: string; mode: string } };
    };
    expect(health.status).toBe('ok');
    expect(['redis', 'redis-cluster']).toContain(health.checks.pubsub.mode);
    // After A's session ends, B's adds are no longer pushed to A.
    await holder.call('removeLiveSession', { connectionId: 'c-a' });
    await sender.call('addMessage', { connectionId: 'c-a', recipientDids: ['did:x'], payload });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(holder.notifiedIds('c-a')).toEqual([messageId]);
  });
});
