import { RpcErrorCode } from '@didcomm-mpr/protocol';
import { JsonRpcWsClient, RpcCallError, sql } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

interface Stats {
  pending: number;
  sending: number;
  bytes: number;
  oldestReceivedAt: string | null;
}

const payload = { protected: 'p', ciphertext: 'x'.repeat(64) };
const PAYLOAD_BYTES = Buffer.byteLength(JSON.stringify(payload));

describe('retention, quotas and queue stats through the server', () => {
  let server: TestServer;
  let client: JsonRpcWsClient;
  let n = 0;
  const conn = () => `retention-${++n}-${Date.now()}`;
  const add = (connectionId: string, extra: Record<string, unknown> = {}) =>
    client.call<{ messageId: string }>('addMessage', { connectionId, recipientDids: ['did:example:alice'], payload, ...extra });
  const metric = async (name: string) => {
    const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };

  beforeAll(async () => {
    server = await startTestServer({
      MAX_QUEUE_MESSAGES: '20',
      MAX_QUEUE_BYTES: String(PAYLOAD_BYTES * 1000),
      MESSAGE_TTL_MS: '60000',
      EXPIRY_SWEEP_INTERVAL_MS: '200',
    });
    client = await JsonRpcWsClient.connect(server.wsUrl);
  });
  afterAll(async () => {
    await client?.closeQuietly();
    await server?.close();
  });

  it('holds MAX_QUEUE_MESSAGES under 100 concurrent adds: exactly the limit is stored, the rest get "queue full"', async () => {
    const c = conn();
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => add(c)));
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as RpcCallError);
    expect(ok).toHaveLength(20);
    expect(refused).toHaveLength(80);
    for (const error of refused) {
      expect(error.error.code).toBe(RpcErrorCode.QueueFull);
      expect(error.error.message).toMatch(/^Queue full: the queue of connection .* is full: .*MAX_QUEUE_MESSAGES is 20/);
      expect(error.error.data).toEqual({ retryable: false });
    }
    expect(await client.call('getAvailableMessageCount', { connectionId: c })).toBe(20);
    expect(await metric('mpr_quota_rejections_total{tenant="default"}')).toBeGreaterThanOrEqual(80);
    // Once the recipient fetched and acknowledged, there is room again.
    const taken = await client.call<{ id: string }[]>('takeFromQueue', { connectionId: c, limit: 5 });
    await client.call('removeMessages', { connectionId: c, messageIds: taken.map((m) => m.id) });
    await expect(add(c)).resolves.toHaveProperty('messageId');
  });

  it('a retried add of a stored messageId succeeds even when the queue is full', async () => {
    const c = conn();
    const first = await add(c, { messageId: 'kept' });
    for (let i = 1; i < 20; i++) await add(c);
    await expect(add(c)).rejects.toMatchObject({ error: { code: RpcErrorCode.QueueFull } });
    await expect(add(c, { messageId: 'kept' })).resolves.toEqual(first);
  });

  it('refuses by MAX_QUEUE_BYTES on another server, and the other connections are not affected', async () => {
    const big = { protected: 'p', ciphertext: 'x'.repeat(600) };
    const small = await startTestServer({ MAX_QUEUE_BYTES: String(Buffer.byteLength(JSON.stringify(big)) * 3) });
    const other = await JsonRpcWsClient.connect(small.wsUrl);
    try {
      const c = conn();
      const send = (connectionId: string) => other.call('addMessage', { connectionId, recipientDids: ['did:example:a'], payload: big });
      for (let i = 0; i < 3; i++) await send(c);
      await expect(send(c)).rejects.toMatchObject({
        error: { code: RpcErrorCode.QueueFull, message: expect.stringContaining('MAX_QUEUE_BYTES') },
      });
      await expect(send(conn())).resolves.toHaveProperty('messageId');
    } finally {
      await other.closeQuietly();
      await small.close();
    }
  });

  it('getQueueStats reports pending, sending, bytes and the oldest message, and validates its params', async () => {
    const c = conn();
    expect(await client.call<Stats>('getQueueStats', { connectionId: c })).toEqual({
      pending: 0,
      sending: 0,
      bytes: 0,
      oldestReceivedAt: null,
    });
    for (let i = 0; i < 3; i++) await add(c);
    const [taken] = await client.call<{ id: string; receivedAt: string }[]>('takeFromQueue', { connectionId: c, limit: 1 });
    expect(await client.call<Stats>('getQueueStats', { connectionId: c })).toEqual({
      pending: 2,
      sending: 1,
      bytes: 3 * PAYLOAD_BYTES,
      oldestReceivedAt: taken.receivedAt,
    });
    await expect(client.call('getQueueStats', {})).rejects.toMatchObject({
      error: { code: RpcErrorCode.InvalidParams, data: { field: 'connectionId' } },
    });
  });

  it('an add with a short ttlMs is gone when it expires: not taken, not counted, then deleted by the sweeper', async () => {
    const c = conn();
    const expiredBefore = (await metric('mpr_messages_expired_total{tenant="default"}')) ?? 0;
    const { messageId: shortLived } = await add(c, { ttlMs: 300 });
    const { messageId: kept } = await add(c, { ttlMs: 10 * 60_000 }); // capped at MESSAGE_TTL_MS
    const [{ expires_in: cappedMs }] = await sql<{ expires_in: number }>(
      server.databaseUrl,
      `SELECT extract(epoch FROM expires_at - received_at)::float * 1000 AS expires_in FROM queued_message WHERE connection_id = $1 AND id = $2`,
      [c, kept],
    );
    expect(Math.round(cappedMs)).toBe(60_000);
    expect(await client.call('getAvailableMessageCount', { connectionId: c })).toBe(2);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await client.call('getAvailableMessageCount', { connectionId: c })).toBe(1);
    expect((await client.call<Stats>('getQueueStats', { connectionId: c })).pending).toBe(1);
    // The sweeper runs every 200 ms here: the row itself goes.
    const deadline = Date.now() + 5_000;
    while (
      (await sql(server.databaseUrl, 'SELECT 1 FROM queued_message WHERE connection_id = $1 AND id = $2', [c, shortLived])).length > 0
    ) {
      if (Date.now() > deadline) throw new Error('the expired message was not deleted by the sweeper');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(await metric('mpr_messages_expired_total{tenant="default"}')).toBeGreaterThan(expiredBefore);
    expect((await client.call<{ id: string }[]>('takeFromQueue', { connectionId: c })).map((m) => m.id)).toEqual([kept]);
  });

  it('/metrics serves the fleet gauges: pending total, queued bytes, oldest pending age', async () => {
    await add(conn());
    expect(await metric('mpr_pending_messages')).toBeGreaterThan(0);
    expect(await metric('mpr_queued_bytes')).toBeGreaterThan(0);
    expect(await metric('mpr_oldest_pending_message_age_seconds')).toBeGreaterThanOrEqual(0);
  });
});
