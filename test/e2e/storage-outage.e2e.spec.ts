import { createTestDatabase, JsonRpcWsClient, RpcCallError, TcpProxy } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

describe('PostgreSQL outage', () => {
  let proxy: TcpProxy;
  let server: TestServer;
  let client: JsonRpcWsClient;
  let dropDatabase: () => Promise<void>;

  beforeAll(async () => {
    const database = await createTestDatabase();
    dropDatabase = database.drop;
    const target = new URL(database.url);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    target.host = `127.0.0.1:${proxy.port}`;
    server = await startTestServer({ DATABASE_QUERY_TIMEOUT_MS: '1000' }, target.toString());
    client = await JsonRpcWsClient.connect(server.wsUrl);
  });
  afterAll(async () => {
    await client?.close();
    await proxy?.restore();
    await server?.stop();
    await proxy?.close();
    await dropDatabase?.();
  });

  it('fails calls at once with the retryable storage-unavailable error, answers 503, and recovers by itself', async () => {
    const before = await client.call<{ messageId: string }>('addMessage', { connectionId: 'c', recipientDids: ['did:a'], payload: { n: 1 } });
    await proxy.cut();

    const started = Date.now();
    const failure = await client
      .call('addMessage', { connectionId: 'c', recipientDids: ['did:a'], payload: { n: 2 } })
      .then(() => undefined, (error: RpcCallError) => error.error);
    expect(failure).toMatchObject({ code: -32000, data: { retryable: true } });
    expect(Date.now() - started).toBeLessThan(3000);
    await expect(client.call('takeFromQueue', { connectionId: 'c' })).rejects.toMatchObject({ error: { code: -32000 } });
    // The socket and the server keep working for what needs no storage.
    expect(await client.call('ping')).toBe('pong');

    const health = await fetch(`${server.httpUrl}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'down', checks: { postgres: { status: 'down' } } });
    expect((await fetch(`${server.httpUrl}/metrics`)).status).toBe(200);

    await proxy.restore();
    const deadline = Date.now() + 10_000;
    while ((await fetch(`${server.httpUrl}/health`)).status !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(`${server.httpUrl}/health`)).status).toBe(200);
    const after = await client.call<{ messageId: string }>('addMessage', { connectionId: 'c', recipientDids: ['did:a'], payload: { n: 3 } });
    const taken = await client.call<{ id: string }[]>('takeFromQueue', { connectionId: 'c' });
    expect(taken.map((m) => m.id)).toEqual([before.messageId, after.messageId]);
  });

  it('a stalled network (no answer, no error): the first call fails at the query timeout, later ones at once, and service resumes', async () => {
    await client.call('addMessage', { connectionId: 's', recipientDids: ['did:a'], payload: { n: 1 } });
    proxy.stall();

    let started = Date.now();
    await expect(client.call('addMessage', { connectionId: 's', recipientDids: ['did:a'], payload: { n: 2 } })).rejects.toMatchObject({
      error: { code: -32000, data: { retryable: true } },
    });
    // DATABASE_QUERY_TIMEOUT_MS is 1 s here: the call is not left hanging until the client gives up.
    expect(Date.now() - started).toBeLessThan(3000);
    started = Date.now();
    for (const method of ['takeFromQueue', 'getAvailableMessageCount', 'getQueueStats']) {
      await expect(client.call(method, { connectionId: 's' })).rejects.toMatchObject({ error: { code: -32000 } });
    }
    expect(Date.now() - started).toBeLessThan(500);
    expect(await client.call('ping')).toBe('pong');
    expect((await fetch(`${server.httpUrl}/health`)).status).toBe(503);

    await proxy.restore();
    started = Date.now();
    let count: number | undefined;
    while (count === undefined && Date.now() - started < 15_000) {
      count = await client.call<number>('getAvailableMessageCount', { connectionId: 's' }).catch(() => undefined);
      if (count === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(count).toBe(1);
    expect((await fetch(`${server.httpUrl}/health`)).status).toBe(200);
  });
});
