import { WebSocket } from 'ws';
import { JsonRpcWsClient, sql } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

describe('live sessions and live delivery', () => {
  let server: TestServer;
  let n = 0;
  const conn = () => `live-${++n}-${Date.now()}`;
  const clients: JsonRpcWsClient[] = [];
  const connect = async (url = server.wsUrl) => {
    const client = await JsonRpcWsClient.connect(url);
    clients.push(client);
    return client;
  };
  const add = (client: JsonRpcWsClient, connectionId: string, payload: Record<string, unknown>) =>
    client
      .call<{ messageId: string }>('addMessage', { connectionId, recipientDids: ['did:example:bob'], payload })
      .then((r) => r.messageId);
  const stateOf = async (connectionId: string) =>
    (
      await sql<{ id: string; state: number }>(
        server.databaseUrl,
        'SELECT id, state FROM queued_message WHERE connection_id = $1 ORDER BY seq',
        [connectionId],
      )
    ).map((r) => [r.id, r.state]);

  beforeAll(async () => {
    server = await startTestServer({
      REDELIVERY_TIMEOUT_MS: '1500',
      MAX_PAYLOAD_BYTES: '4096',
      MAX_FRAME_BYTES: '70000',
      MAX_SOCKET_BUFFER_BYTES: '70000',
    });
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
  });
  afterAll(async () => {
    await server?.close();
  });

  it('pushes a message added on another socket to the holder, marked sending, and not to anyone else', async () => {
    const holder = await connect();
    const sender = await connect();
    const bystander = await connect();
    const c = conn();
    expect(await holder.call('addLiveSession', { connectionId: c, sessionId: 's1' })).toBe(true);
    expect(await sender.call('getLiveSession', { connectionId: c })).toBe(true);
    const payload = { protected: 'eyJ', ciphertext: 'abc', nested: { k: [1, 2, { u: 'ü' }] } };
    const id = await add(sender, c, payload);
    await holder.waitFor(() => holder.notifiedIds(c).includes(id), 5000, 'notification');
    const [notification] = holder.notifications();
    expect(notification).toEqual({ connectionId: c, messages: [{ id, receivedAt: expect.any(String), encryptedMessage: payload }] });
    expect(await stateOf(c)).toEqual([[id, 1]]);
    expect(await sender.call('getAvailableMessageCount', { connectionId: c })).toBe(0);
    expect(await sender.call('takeFromQueue', { connectionId: c })).toEqual([]);
    expect(bystander.notifications()).toHaveLength(0);
    expect(sender.notifications()).toHaveLength(0);
  });

  it('does not push the backlog that existed before addLiveSession (it is pulled with takeFromQueue)', async () => {
    const holder = await connect();
    const c = conn();
    const old = await add(holder, c, { old: true });
    await holder.call('addLiveSession', { connectionId: c, sessionId: 's1' });
    const fresh = await add(holder, c, { fresh: true });
    await holder.waitFor(() => holder.notifiedIds(c).includes(fresh), 5000);
    expect(holder.notifiedIds(c)).toEqual([fresh]);
    expect((await holder.call<{ id: string }[]>('takeFromQueue', { connectionId: c })).map((m) => m.id)).toEqual([old]);
  });

  it('a newer session takes over from another socket: only the new holder receives, in-flight messages return to pending', async () => {
    const first = await connect();
    const second = await connect();
    const sender = await connect();
    const c = conn();
    await first.call('addLiveSession', { connectionId: c, sessionId: 'old' });
    const m1 = await add(sender, c, { n: 1 });
    await first.waitFor(() => first.notifiedIds(c).includes(m1), 5000);
    expect(await second.call('addLiveSession', { connectionId: c, sessionId: 'new' })).toBe(true);
    // m1 was sending to the former holder: pending again, for the new holder to pull
    expect(await stateOf(c)).toEqual([[m1, 0]]);
    const m2 = await add(sender, c, { n: 2 });
    await second.waitFor(() => second.notifiedIds(c).includes(m2), 5000);
    expect(second.notifiedIds(c)).toEqual([m2]);
    expect(first.notifiedIds(c)).toEqual([m1]);
    // the former holder closing does not end the new holder's session
    await first.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(await sender.call('getLiveSession', { connectionId: c })).toBe(true);
  });

  it('reclaim succeeds only when no session or the same sessionId is held', async () => {
    const a = await connect();
    const b = await connect();
    const c = conn();
    expect(await a.call('addLiveSession', { connectionId: c, sessionId: 's-a', reclaim: true })).toBe(true);
    expect(await b.call('addLiveSession', { connectionId: c, sessionId: 's-b', reclaim: true })).toBe(false);
    const m = await add(b, c, { n: 1 });
    await a.waitFor(() => a.notifiedIds(c).includes(m), 5000);
    expect(b.notifiedIds(c)).toEqual([]);
    expect(await b.call('addLiveSession', { connectionId: c, sessionId: 's-a', reclaim: true })).toBe(true);
    const m2 = await add(a, c, { n: 2 });
    await b.waitFor(() => b.notifiedIds(c).includes(m2), 5000);
  });

  it('removeLiveSession honours the sessionId fence', async () => {
    const a = await connect();
    const c = conn();
    expect(await a.call('removeLiveSession', { connectionId: c })).toBe(false);
    await a.call('addLiveSession', { connectionId: c, sessionId: 'current' });
    expect(await a.call('removeLiveSession', { connectionId: c, sessionId: 'stale' })).toBe(false);
    expect(await a.call('getLiveSession', { connectionId: c })).toBe(true);
    expect(await a.call('removeLiveSession', { connectionId: c, sessionId: 'current' })).toBe(true);
    expect(await a.call('getLiveSession', { connectionId: c })).toBe(false);
    await a.call('addLiveSession', { connectionId: c, sessionId: 'again' });
    expect(await a.call('removeLiveSession', { connectionId: c })).toBe(true);
    const m = await add(a, c, { after: 'removal' });
    await new Promise((r) => setTimeout(r, 200));
    expect(a.notifiedIds(c)).toEqual([]);
    expect(await stateOf(c)).toEqual([[m, 0]]);
  });

  it('closing the holder socket ends its sessions and returns its in-flight messages to pending', async () => {
    const holder = await connect();
    const other = await connect();
    const c1 = conn();
    const c2 = conn();
    await holder.call('addLiveSession', { connectionId: c1, sessionId: 's' });
    await holder.call('addLiveSession', { connectionId: c2, sessionId: 's' });
    const m = await add(other, c1, { n: 1 });
    await holder.waitFor(() => holder.notifiedIds(c1).includes(m), 5000);
    await holder.close();
    const deadline = Date.now() + 5000;
    while ((await other.call('getLiveSession', { connectionId: c1 })) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await other.call('getLiveSession', { connectionId: c1 })).toBe(false);
    expect(await other.call('getLiveSession', { connectionId: c2 })).toBe(false);
    expect(await stateOf(c1)).toEqual([[m, 0]]);
  });

  it('an unacknowledged notified message returns to pending at the redelivery timeout and is notified again', async () => {
    const holder = await connect();
    const c = conn();
    await holder.call('addLiveSession', { connectionId: c, sessionId: 's' });
    const m = await add(holder, c, { n: 1 });
    await holder.waitFor(() => holder.notifiedIds(c).length === 1, 5000);
    await holder.waitFor(() => holder.notifiedIds(c).length === 2, 6000, 'the redelivery');
    expect(holder.notifiedIds(c)).toEqual([m, m]);
    await holder.call('removeMessages', { connectionId: c, messageIds: [m] });
    expect(await stateOf(c)).toEqual([]);
  });

  it('never hands the same pending message to both a take and a notification', async () => {
    const holder = await connect();
    const taker = await connect();
    const sender = await connect();
    const c = conn();
    await holder.call('addLiveSession', { connectionId: c, sessionId: 's' });
    const added: string[] = [];
    const taken: string[] = [];
    let adding = true;
    const takeLoop = (async () => {
      while (adding) taken.push(...(await taker.call<{ id: string }[]>('takeFromQueue', { connectionId: c, limit: 5 })).map((m) => m.id));
    })();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 50; i++) added.push(await add(sender, c, { i }));
      }),
    );
    adding = false;
    await takeLoop;
    await holder.waitFor(() => holder.notifiedIds(c).length + taken.length >= added.length, 5000, 'every message notified or taken');
    const delivered = [...holder.notifiedIds(c), ...taken];
    expect(new Set(delivered).size).toBe(delivered.length);
    expect(new Set(delivered)).toEqual(new Set(added));
  });

  it('splits notifications so that no frame exceeds MAX_FRAME_BYTES', async () => {
    const holder = await connect();
    const sender = await connect();
    const c = conn();
    await holder.call('addLiveSession', { connectionId: c, sessionId: 's' });
    const frames: number[] = [];
    holder.socket.on('message', (data: Buffer) => frames.push(data.length));
    // Pipelined adds (not awaited one by one) arrive while a commit is in flight and share the next one,
    // so one event carries many messages whose notification would exceed the frame limit unsplit.
    const ids = await Promise.all(Array.from({ length: 60 }, (_, i) => add(sender, c, { data: 'p'.repeat(3500), i })));
    expect(new Set(ids).size).toBe(60);
    await holder.waitFor(() => holder.notifiedIds(c).length === 60, 5000, 'all 60 notified');
    expect(Math.max(...frames)).toBeLessThanOrEqual(70000);
  });

  it('leaves messages pending instead of buffering them for a holder that does not read its socket', async () => {
    const sender = await connect();
    const c = conn();
    const stalled = new WebSocket(server.wsUrl);
    await new Promise((resolve) => stalled.once('open', resolve));
    const ack = new Promise((resolve) => stalled.once('message', resolve));
    stalled.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'addLiveSession', params: { connectionId: c, sessionId: 's' } }));
    await ack;
    // Stop reading: the kernel buffers fill, then the server's send buffer grows past its bound.
    (stalled as unknown as { _socket: { pause(): void } })._socket.pause();
    const payload = { data: 'q'.repeat(3900) };
    for (let i = 0; i < 1500; i++) await add(sender, c, payload);
    const rows = await sql<{ state: number; n: number }>(
      server.databaseUrl,
      'SELECT state, count(*)::int AS n FROM queued_message WHERE connection_id = $1 GROUP BY state',
      [c],
    );
    const pending = rows.find((r) => r.state === 0)?.n ?? 0;
    const sending = rows.find((r) => r.state === 1)?.n ?? 0;
    expect(pending + sending).toBe(1500);
    expect(pending).toBeGreaterThan(0);
    // The server stays usable, and the stalled holder's messages are takeable once its session ends.
    stalled.terminate();
    // The session ends first (getLiveSession turns false), then its in-flight messages are released.
    const deadline = Date.now() + 5000;
    while ((await sender.call<number>('getAvailableMessageCount', { connectionId: c })) < 1500 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(await sender.call('getLiveSession', { connectionId: c })).toBe(false);
    expect(await sender.call('getAvailableMessageCount', { connectionId: c })).toBe(1500);
  });
});
