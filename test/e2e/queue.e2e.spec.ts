import { JsonRpcWsClient, RpcCallError, sql } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

interface Queued {
  id: string;
  receivedAt: string;
  encryptedMessage: Record<string, unknown>;
}

describe('queue methods over a real WebSocket and PostgreSQL', () => {
  let server: TestServer;
  let client: JsonRpcWsClient;
  let n = 0;
  const conn = () => `conn-${++n}-${Date.now()}`;
  const add = (connectionId: string, payload: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    client.call<{ messageId: string }>('addMessage', { connectionId, recipientDids: ['did:example:alice'], payload, ...extra });

  beforeAll(async () => {
    server = await startTestServer({ REDELIVERY_TIMEOUT_MS: '400', MAX_TAKE_MESSAGES: '50' });
    client = await JsonRpcWsClient.connect(server.wsUrl);
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it('adds, then takes oldest first with the payload deep-equal to what was added', async () => {
    const c = conn();
    const payloads = [
      { protected: 'a', ciphertext: 'x'.repeat(10), nested: { list: [1, 'two', null, { three: true }] } },
      { b: 2 },
      { c: 'ü€😀' },
    ];
    const ids: string[] = [];
    for (const payload of payloads) ids.push((await add(c, payload)).messageId);
    const taken = await client.call<Queued[]>('takeFromQueue', { connectionId: c });
    expect(taken.map((m) => m.id)).toEqual(ids);
    expect(taken.map((m) => m.encryptedMessage)).toEqual(payloads);
    for (const message of taken) expect(new Date(message.receivedAt).toISOString()).toBe(message.receivedAt);
  });

  it('is idempotent on messageId per connection, and the same id on another connection is another message', async () => {
    const c1 = conn();
    const c2 = conn();
    expect(await add(c1, { v: 1 }, { messageId: 'm-1' })).toEqual({ messageId: 'm-1' });
    expect(await add(c1, { v: 'changed' }, { messageId: 'm-1' })).toEqual({ messageId: 'm-1' });
    expect(await add(c2, { v: 2 }, { messageId: 'm-1' })).toEqual({ messageId: 'm-1' });
    expect(await client.call('getAvailableMessageCount', { connectionId: c1 })).toBe(1);
    expect(await client.call('getAvailableMessageCount', { connectionId: c2 })).toBe(1);
    const [only] = await client.call<Queued[]>('takeFromQueue', { connectionId: c1 });
    expect(only.encryptedMessage).toEqual({ v: 1 });
  });

  it('concurrent adds of the same messageId store it once', async () => {
    const c = conn();
    const results = await Promise.all(Array.from({ length: 20 }, () => add(c, { same: true }, { messageId: 'dup' })));
    expect(new Set(results.map((r) => r.messageId))).toEqual(new Set(['dup']));
    expect(await client.call('getAvailableMessageCount', { connectionId: c })).toBe(1);
  });

  it('filters by recipientDid for take, count and removeAll', async () => {
    const c = conn();
    const a = await client.call<{ messageId: string }>('addMessage', { connectionId: c, recipientDids: ['did:a'], payload: { to: 'a' } });
    const b = await client.call<{ messageId: string }>('addMessage', {
      connectionId: c,
      recipientDids: ['did:b', 'did:x'],
      payload: { to: 'b' },
    });
    expect(await client.call('getAvailableMessageCount', { connectionId: c, recipientDid: 'did:a' })).toBe(1);
    expect(await client.call('getAvailableMessageCount', { connectionId: c, recipientDid: 'did:x' })).toBe(1);
    expect(await client.call('getAvailableMessageCount', { connectionId: c })).toBe(2);
    const taken = await client.call<Queued[]>('takeFromQueue', { connectionId: c, recipientDid: 'did:x' });
    expect(taken.map((m) => m.id)).toEqual([b.messageId]);
    expect(await client.call('removeAllMessages', { connectionId: c, recipientDid: 'did:a' })).toBe(true);
    expect(await sql(server.databaseUrl, 'SELECT id FROM queued_message WHERE connection_id = $1', [c])).toEqual([{ id: b.messageId }]);
    expect(a.messageId).not.toBe(b.messageId);
  });

  it('respects limit, clamps it to MAX_TAKE_MESSAGES, and taken messages are neither returned again nor counted', async () => {
    const c = conn();
    for (let i = 0; i < 60; i++) await add(c, { i });
    const first = await client.call<Queued[]>('takeFromQueue', { connectionId: c, limit: 5 });
    expect(first.map((m) => m.encryptedMessage.i)).toEqual([0, 1, 2, 3, 4]);
    expect(await client.call('getAvailableMessageCount', { connectionId: c })).toBe(55);
    const clamped = await client.call<Queued[]>('takeFromQueue', { connectionId: c, limit: 1000 });
    expect(clamped).toHaveLength(50);
    expect(clamped[0].encryptedMessage.i).toBe(5);
    const rest = await client.call<Queued[]>('takeFromQueue', { connectionId: c });
    expect(rest.map((m) => m.encryptedMessage.i)).toEqual([55, 56, 57, 58, 59]);
    expect(await client.call('getAvailableMessageCount', { connectionId: c })).toBe(0);
  });

  it('keeps the summed payload bytes within limitBytes, but returns an oversized oldest message alone', async () => {
    const c = conn();
    const big = { data: 'x'.repeat(3000) };
    await add(c, big);
    await add(c, { data: 'y'.repeat(100) });
    await add(c, { data: 'z'.repeat(100) });
    const first = await client.call<Queued[]>('takeFromQueue', { connectionId: c, limitBytes: 1000 });
    expect(first.map((m) => m.encryptedMessage)).toEqual([big]);
    const size = Buffer.byteLength(JSON.stringify({ data: 'y'.repeat(100) }));
    const second = await client.call<Queued[]>('takeFromQueue', { connectionId: c, limitBytes: size + 1 });
    expect(second).toHaveLength(1);
    const third = await client.call<Queued[]>('takeFromQueue', { connectionId: c, limitBytes: size });
    expect(third).toHaveLength(1);
  });

  it('deleteMessages takes and deletes in one go', async () => {
    const c = conn();
    await add(c, { a: 1 });
    await add(c, { a: 2 });
    const taken = await client.call<Queued[]>('takeFromQueue', { connectionId: c, deleteMessages: true });
    expect(taken).toHaveLength(2);
    expect(await sql(server.databaseUrl, 'SELECT 1 FROM queued_message WHERE connection_id = $1', [c])).toHaveLength(0);
  });

  it('removeMessages deletes only the listed ids of that connection and ignores unknown ids', async () => {
    const c1 = conn();
    const c2 = conn();
    await add(c1, { v: 1 }, { messageId: 'shared' });
    await add(c2, { v: 2 }, { messageId: 'shared' });
    const keep = await add(c1, { v: 3 });
    expect(await client.call('removeMessages', { connectionId: c1, messageIds: ['shared', 'unknown-id'] })).toBe(true);
    expect(await client.call('removeMessages', { connectionId: c1, messageIds: [] })).toBe(true);
    expect(
      await sql(server.databaseUrl, 'SELECT connection_id, id FROM queued_message WHERE connection_id IN ($1, $2) ORDER BY seq', [c1, c2]),
    ).toEqual([
      { connection_id: c2, id: 'shared' },
      { connection_id: c1, id: keep.messageId },
    ]);
  });

  it('removeAllMessages without recipientDid empties the connection only', async () => {
    const c1 = conn();
    const c2 = conn();
    await add(c1, { v: 1 });
    await add(c1, { v: 2 });
    await add(c2, { v: 3 });
    expect(await client.call('removeAllMessages', { connectionId: c1 })).toBe(true);
    expect(await client.call('getAvailableMessageCount', { connectionId: c1 })).toBe(0);
    expect(await client.call('getAvailableMessageCount', { connectionId: c2 })).toBe(1);
  });

  it('two concurrent takes never return the same message', async () => {
    const c = conn();
    await Promise.all(Array.from({ length: 200 }, (_, i) => add(c, { i })));
    const other = await JsonRpcWsClient.connect(server.wsUrl);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? client : other).call<Queued[]>('takeFromQueue', { connectionId: c, limit: 30 })),
    );
    await other.close();
    const ids = results.flat().map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(200);
  });

  it('a taken but unacknowledged message returns to pending after REDELIVERY_TIMEOUT_MS', async () => {
    const c = conn();
    const { messageId } = await add(c, { v: 1 });
    expect(await client.call<Queued[]>('takeFromQueue', { connectionId: c })).toHaveLength(1);
    expect(await client.call('getAvailableMessageCount', { connectionId: c })).toBe(0);
    const deadline = Date.now() + 5000;
    while ((await client.call('getAvailableMessageCount', { connectionId: c })) === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const again = await client.call<Queued[]>('takeFromQueue', { connectionId: c });
    expect(again.map((m) => m.id)).toEqual([messageId]);
    // acknowledged: gone for good
    await client.call('removeMessages', { connectionId: c, messageIds: [messageId] });
    await new Promise((r) => setTimeout(r, 900));
    expect(await client.call('getAvailableMessageCount', { connectionId: c })).toBe(0);
  });

  it('stores what addMessage acknowledged before replying (committed, visible to another connection)', async () => {
    const c = conn();
    const { messageId } = await add(c, { durable: true });
    const rows = await sql(
      server.databaseUrl,
      'SELECT state, payload_bytes, recipient_dids FROM queued_message WHERE connection_id = $1 AND id = $2',
      [c, messageId],
    );
    expect(rows).toEqual([{ state: 0, payload_bytes: Buffer.byteLength('{"durable":true}'), recipient_dids: ['did:example:alice'] }]);
  });

  it('rejects an oversized payload with the payload-too-large error and stores nothing', async () => {
    const small = await startTestServer({ MAX_PAYLOAD_BYTES: '2048' });
    const c = conn();
    const other = await JsonRpcWsClient.connect(small.wsUrl);
    try {
      await expect(
        other.call('addMessage', { connectionId: c, recipientDids: ['did:a'], payload: { x: 'x'.repeat(3000) } }),
      ).rejects.toMatchObject({
        error: { code: -32001, data: { retryable: false } },
      });
      expect(await other.call('getAvailableMessageCount', { connectionId: c })).toBe(0);
      expect(await other.call('ping')).toBe('pong');
    } finally {
      await other.close();
      await small.close();
    }
  });

  it('names the offending field in invalid params errors', async () => {
    const error = await client.call('takeFromQueue', { connectionId: 'c', limit: 0 }).catch((e: RpcCallError) => e.error);
    expect(error).toMatchObject({ code: -32602, data: { retryable: false, field: 'limit' } });
    expect((error as { message: string }).message).toContain('limit');
  });
});
