import { JsonRpcWsClient, RedisSingle, startRedisSingle } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

jest.setTimeout(60_000);

/** Redis trouble is not data loss: adds keep committing, /health says degraded, delivery resumes by itself. */
describe('Redis outage with two instances', () => {
  let redis: RedisSingle;
  let a: TestServer;
  let b: TestServer;
  const clients: JsonRpcWsClient[] = [];

  beforeAll(async () => {
    redis = await startRedisSingle();
    a = await startTestServer({ REDIS_URL: redis.url });
    b = await startTestServer({ REDIS_URL: redis.url }, a.databaseUrl);
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await b?.stop();
    await a?.close();
    await redis?.close();
  });

  const health = async (server: TestServer) =>
    (await (await fetch(`${server.httpUrl}/health`)).json()) as { status: string; checks: { pubsub: { status: string } } };

  it('keeps acknowledging adds while Redis is down, and live delivery comes back with it', async () => {
    const holder = await JsonRpcWsClient.connect(a.wsUrl);
    const sender = await JsonRpcWsClient.connect(b.wsUrl);
    clients.push(holder, sender);
    await holder.call('addLiveSession', { connectionId: 'c', sessionId: 's' });

    await redis.node.stop();
    const deadline = Date.now() + 10_000;
    while ((await health(b)).checks.pubsub.status !== 'degraded' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await health(b)).toMatchObject({ status: 'degraded', checks: { pubsub: { status: 'degraded' } } });
    expect((await fetch(`${b.httpUrl}/health`)).status).toBe(200);

    const during: string[] = [];
    for (let i = 0; i < 20; i++) {
      during.push(
        (await sender.call<{ messageId: string }>('addMessage', { connectionId: 'c', recipientDids: ['did:x'], payload: { i } })).messageId,
      );
    }
    // Session calls need the registry: a clear, retryable error rather than a wrong answer.
    await expect(sender.call('getLiveSession', { connectionId: 'c' })).rejects.toMatchObject({
      error: { code: -32000, data: { retryable: true } },
    });

    await redis.node.start();
    const back = Date.now() + 15_000;
    while ((await health(a)).status !== 'ok' && Date.now() < back) await new Promise((r) => setTimeout(r, 50));
    while ((await health(b)).status !== 'ok' && Date.now() < back) await new Promise((r) => setTimeout(r, 50));
    expect((await health(b)).status).toBe('ok');

    // Nothing acknowledged during the outage is lost: it was either pushed or is takeable now.
    const taken = (await holder.call<{ id: string }[]>('takeFromQueue', { connectionId: 'c', limit: 100 })).map((m) => m.id);
    expect(new Set([...taken, ...holder.notifiedIds('c')])).toEqual(new Set(during));
    // And live delivery works again without anyone reconnecting.
    const after = (
      await sender.call<{ messageId: string }>('addMessage', { connectionId: 'c', recipientDids: ['did:x'], payload: { after: true } })
    ).messageId;
    await holder.waitFor(() => holder.notifiedIds('c').includes(after), 10_000, 'live delivery after Redis came back');
  });
});
