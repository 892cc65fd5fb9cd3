import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  bearer,
  JsonRpcMessage,
  JsonRpcWsClient,
  metricValue,
  TestToken,
  testToken,
  upgradeOutcome as upgrade,
  writeTokensFile,
} from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * AUTH_TOKENS_FILE on one server: tenants (the same connectionId under two tokens' tenants names two queues and two
 * live sessions), roles (a monitor token reads, never writes), rate limits (-32004, the socket stays), and a file
 * change picked up without a restart. SIGHUP, the exit at boot and TLS rotation run against real processes in
 * token-reload.e2e.spec.ts.
 */

interface Queued {
  id: string;
  encryptedMessage: Record<string, unknown>;
}

async function waitUntil(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('access control with AUTH_TOKENS_FILE', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mpr-access-'));
  const file = path.join(dir, 'tokens.json');
  const a = testToken('mediator-a', 'a');
  const b = testToken('mediator-b', 'b');
  const monitor = testToken('monitor-a', 'a', 'monitor');
  const limited = testToken('limited', 'c', 'mediator', 2);
  const tokens = [a, b, monitor, limited];
  let server: TestServer;
  const clients: JsonRpcWsClient[] = [];
  let n = 0;
  const unique = (what: string) => `${what}-${++n}-${Date.now()}`;
  const connect = async (token: TestToken) => {
    const client = await JsonRpcWsClient.connect(server.wsUrl, { headers: bearer(token) });
    clients.push(client);
    return client;
  };
  const add = (client: JsonRpcWsClient, connectionId: string, payload: Record<string, unknown>, messageId?: string) =>
    client.call<{ messageId: string }>('addMessage', {
      connectionId,
      recipientDids: ['did:example:bob'],
      payload,
      ...(messageId ? { messageId } : {}),
    });
  const count = (client: JsonRpcWsClient, connectionId: string) => client.call<number>('getAvailableMessageCount', { connectionId });

  beforeAll(async () => {
    writeTokensFile(file, tokens);
    server = await startTestServer({ AUTH_TOKENS_FILE: file });
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.closeQuietly()));
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts the listed tokens only, as a header or ?token=', async () => {
    expect(await upgrade(server.wsUrl, bearer(a))).toBe('open');
    expect(await upgrade(`${server.wsUrl}/?token=${encodeURIComponent(monitor.token)}`, {})).toBe('open');
    expect(await upgrade(server.wsUrl, {})).toBe(401);
    expect(await upgrade(server.wsUrl, { Authorization: `Bearer ${a.token}x` })).toBe(401);
    // The digest is what the file stores; presenting it is not presenting the token.
    const { createHash } = await import('node:crypto');
    expect(await upgrade(server.wsUrl, { Authorization: `Bearer ${createHash('sha256').update(a.token).digest('hex')}` })).toBe(401);
  });

  it('two tenants using the same connectionId see nothing of each other: add, count, stats, take, remove, removeAll', async () => {
    const A = await connect(a);
    const B = await connect(b);
    const c = unique('shared');
    // The same messageId in both tenants: two messages, neither an idempotent repeat of the other.
    expect(await add(A, c, { from: 'a' }, 'same-id')).toEqual({ messageId: 'same-id' });
    expect(await add(B, c, { from: 'b' }, 'same-id')).toEqual({ messageId: 'same-id' });
    const { messageId: bOnly } = await add(B, c, { from: 'b', n: 2 });
    expect(await count(A, c)).toBe(1);
    expect(await count(B, c)).toBe(2);
    expect(await A.call('getQueueStats', { connectionId: c })).toMatchObject({ pending: 1, sending: 0 });
    expect(await B.call('getQueueStats', { connectionId: c })).toMatchObject({ pending: 2, sending: 0 });

    const takenByA = await A.call<Queued[]>('takeFromQueue', { connectionId: c });
    expect(takenByA.map((m) => m.encryptedMessage)).toEqual([{ from: 'a' }]);
    expect(await B.call('getQueueStats', { connectionId: c })).toMatchObject({ pending: 2, sending: 0 });
    // A removal by ids of the other tenant's messages removes nothing there.
    expect(await A.call('removeMessages', { connectionId: c, messageIds: ['same-id', bOnly] })).toBe(true);
    expect(await count(B, c)).toBe(2);
    expect(await A.call('getQueueStats', { connectionId: c })).toMatchObject({ pending: 0, sending: 0 });
    await add(A, c, { from: 'a', n: 2 });
    expect(await A.call('removeAllMessages', { connectionId: c })).toBe(true);
    expect(await count(A, c)).toBe(0);
    expect((await B.call<Queued[]>('takeFromQueue', { connectionId: c })).map((m) => m.encryptedMessage)).toEqual([
      { from: 'b' },
      { from: 'b', n: 2 },
    ]);
    expect(await B.call('removeAllMessages', { connectionId: c })).toBe(true);
  });

  it('two tenants using the same connectionId hold two live sessions, each notified of its own messages only', async () => {
    const holderA = await connect(a);
    const holderB = await connect(b);
    const senderB = await connect(b);
    const c = unique('live');
    expect(await holderA.call('addLiveSession', { connectionId: c, sessionId: 'sa' })).toBe(true);
    expect(await holderB.call('getLiveSession', { connectionId: c })).toBe(false);
    // A reclaim in tenant b is not refused by tenant a's session, and does not end it.
    expect(await holderB.call('addLiveSession', { connectionId: c, sessionId: 'sb', reclaim: true })).toBe(true);
    expect(await holderA.call('getLiveSession', { connectionId: c })).toBe(true);

    const { messageId: forB } = await add(senderB, c, { to: 'b' });
    const { messageId: forA } = await add(holderA, c, { to: 'a' });
    await holderA.waitFor(() => holderA.notifiedIds(c).includes(forA), 5_000, 'the notification in tenant a');
    await holderB.waitFor(() => holderB.notifiedIds(c).includes(forB), 5_000, 'the notification in tenant b');
    // The notification names the connectionId only; the socket's tenant is implicit.
    expect(holderA.notifications()).toEqual([
      { connectionId: c, messages: [expect.objectContaining({ id: forA, encryptedMessage: { to: 'a' } })] },
    ]);
    expect(holderB.notifications()).toEqual([
      { connectionId: c, messages: [expect.objectContaining({ id: forB, encryptedMessage: { to: 'b' } })] },
    ]);

    // Removing tenant b's session leaves tenant a's. What b's session had in flight is pending again in b's queue, as
    // is b's next message, and a hears nothing of either.
    expect(await senderB.call('removeLiveSession', { connectionId: c })).toBe(true);
    expect(await holderA.call('getLiveSession', { connectionId: c })).toBe(true);
    expect(await senderB.call('getLiveSession', { connectionId: c })).toBe(false);
    await add(senderB, c, { to: 'b', n: 2 });
    expect(await count(senderB, c)).toBe(2);
    expect(await count(holderA, c)).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(holderA.notifiedIds()).toEqual([forA]);
    expect(await holderA.call('removeMessages', { connectionId: c, messageIds: [forA] })).toBe(true);
    expect(await holderA.call('removeLiveSession', { connectionId: c, sessionId: 'sa' })).toBe(true);
  });

  it('labels the queue metrics by tenant', async () => {
    const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
    expect(await metricValue(server.httpUrl, 'mpr_messages_added_total{tenant="a"}')).toBeGreaterThanOrEqual(1);
    expect(await metricValue(server.httpUrl, 'mpr_messages_added_total{tenant="b"}')).toBeGreaterThanOrEqual(1);
    expect(await metricValue(server.httpUrl, 'mpr_messages_taken_total{tenant="b"}')).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^mpr_open_sockets\{tenant="a"\} \d+$/m);
    expect(await metricValue(server.httpUrl, 'mpr_auth_tokens')).toBe(tokens.length);
    // Neither a token nor its digest ever reaches the metrics.
    for (const token of tokens) expect(text).not.toContain(token.token);
  });

  it('a monitor token gets -32005 for every method that changes something, and changes nothing', async () => {
    const M = await connect(monitor);
    const A = await connect(a);
    const c = unique('monitored');
    const { messageId } = await add(A, c, { watched: true });
    expect(await A.call('addLiveSession', { connectionId: c, sessionId: 'held' })).toBe(true);
    const writes: [string, unknown][] = [
      ['addMessage', { connectionId: c, recipientDids: ['did:x'], payload: {} }],
      ['takeFromQueue', { connectionId: c }],
      ['takeFromQueue', { connectionId: c, deleteMessages: true }],
      ['removeMessages', { connectionId: c, messageIds: [messageId] }],
      ['removeAllMessages', { connectionId: c }],
      ['addLiveSession', { connectionId: c, sessionId: 'monitor' }],
      ['removeLiveSession', { connectionId: c }],
      ['rpc.on', ['messagesReceived']],
      ['rpc.off', ['messagesReceived']],
    ];
    for (const [method, params] of writes) {
      const response = await M.request(method, params);
      expect(response.error).toEqual({
        code: -32005,
        message: expect.stringMatching(/^Forbidden/),
        data: { retryable: false, method, role: 'monitor' },
      });
    }
    // Refused before its params were read: bad params get the same answer, not -32602.
    expect((await M.request('addMessage', { nonsense: true })).error?.code).toBe(-32005);
    // Nothing changed, and the reads work, on the monitor's tenant's data.
    expect(await M.call('ping')).toBe('pong');
    expect(await M.call('getAvailableMessageCount', { connectionId: c })).toBe(1);
    expect(await M.call('getQueueStats', { connectionId: c })).toMatchObject({ pending: 1, sending: 0 });
    expect(await M.call('getLiveSession', { connectionId: c })).toBe(true);
    // The API document holds no data: a monitor may read it.
    expect(await M.call<{ openrpc: string }>('rpc.discover')).toMatchObject({ openrpc: expect.stringMatching(/^1\./) });
    // An unknown method is "not found", as for anyone.
    expect((await M.request('noSuchMethod', {})).error?.code).toBe(-32601);
    // In a batch, each entry is judged on its own.
    const batch = (await M.sendRaw(
      JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'ping' },
        { jsonrpc: '2.0', id: 2, method: 'removeAllMessages', params: { connectionId: c } },
      ]),
    )) as JsonRpcMessage[];
    expect(batch.find((r) => r.id === 1)?.result).toBe('pong');
    expect(batch.find((r) => r.id === 2)?.error?.code).toBe(-32005);
    expect(await A.call('getAvailableMessageCount', { connectionId: c })).toBe(1);
    expect(await metricValue(server.httpUrl, 'mpr_access_denied_total{token="monitor-a",reason="forbidden"}')).toBeGreaterThanOrEqual(
      writes.length + 2,
    );
    expect(await A.call('removeLiveSession', { connectionId: c })).toBe(true);
  });

  it('over its maxRequestsPerSecond, summed over its sockets, a token gets -32004 with retryAfterMs, and its socket stays usable', async () => {
    const L1 = await connect(limited);
    const L2 = await connect(limited);
    const A = await connect(a);
    const burst = (client: JsonRpcWsClient) =>
      client.sendRaw(JSON.stringify(Array.from({ length: 10 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' }))), 10_000) as Promise<
        JsonRpcMessage[]
      >;
    const started = performance.now();
    // Both sockets at once: each batch entry counts, and both sockets draw from the one bucket of the token.
    const [first, second] = await Promise.all([burst(L1), burst(L2)]);
    const seconds = (performance.now() - started) / 1000;
    const replies = [...first, ...second];
    expect(replies).toHaveLength(20);
    const ok = replies.filter((reply) => reply.result === 'pong');
    const limitedReplies = replies.filter((reply) => reply.error);
    // The bucket holds 2 and refills 2 a second: separate buckets per socket would let at least 4 through.
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(ok.length).toBeLessThanOrEqual(Math.floor(2 + 2 * seconds + 0.001));
    let retryAfterMs = 0;
    for (const reply of limitedReplies) {
      expect(reply.error).toEqual({
        code: -32004,
        message: expect.stringMatching(/^Rate limited/),
        data: { retryable: true, retryAfterMs: expect.any(Number) },
      });
      const wait = reply.error!.data!.retryAfterMs as number;
      expect(wait).toBeGreaterThan(0);
      expect(wait).toBeLessThanOrEqual(500);
      retryAfterMs = Math.max(retryAfterMs, wait);
    }
    // Another token is not held back.
    expect(await A.call('ping')).toBe('pong');
    // Both sockets stay open, and a call after retryAfterMs succeeds.
    await new Promise((resolve) => setTimeout(resolve, retryAfterMs + 50));
    expect(await L1.call('ping')).toBe('pong');
    expect(L1.open && L2.open).toBe(true);
    expect(L1.closeCode ?? L2.closeCode).toBeUndefined();
    expect(await metricValue(server.httpUrl, 'mpr_access_denied_total{token="limited",reason="rate_limited"}')).toBe(limitedReplies.length);
  });

  it('applies a changed file without a restart: a new token works at once, a removed one loses its socket (1008)', async () => {
    const late = testToken('late', 'a');
    writeTokensFile(file, [...tokens, late]);
    await waitUntil(async () => (await upgrade(server.wsUrl, bearer(late))) === 'open', 5_000, 'the new token to be accepted');
    const L = await connect(late);
    const c = unique('late');
    await add(L, c, { late: true });
    expect(await L.call('addLiveSession', { connectionId: c, sessionId: 's' })).toBe(true);
    const A = await connect(a);
    const closed = new Promise<number>((resolve) => L.onClose(resolve));
    writeTokensFile(file, tokens);
    expect(await closed).toBe(1008);
    // Its session ended as on any close; tenant a's data stays, and so do the other tokens' sockets.
    await waitUntil(
      async () => (await A.call('getLiveSession', { connectionId: c })) === false,
      3_000,
      'the session of the removed token to end',
    );
    expect(await count(A, c)).toBe(1);
    expect(A.open).toBe(true);
    expect(await upgrade(server.wsUrl, bearer(late))).toBe(401);
  });
});
