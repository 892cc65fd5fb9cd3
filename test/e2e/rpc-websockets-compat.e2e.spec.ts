import { Client } from 'rpc-websockets';
import { JsonRpcWsClient } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * Existing mediators connect with the `rpc-websockets` 7.x client: its `call` (which sends `params: null`
 * when none are given), its `subscribe`/`unsubscribe` handshake (`rpc.on`/`rpc.off` with an array), and its
 * event emitter, which surfaces a JSON-RPC notification as an event named after the method.
 */

interface Queued {
  id: string;
  receivedAt: string;
  encryptedMessage: Record<string, unknown>;
}

interface MessagesReceived {
  connectionId: string;
  messages: Queued[];
}

const CALL_TIMEOUT_MS = 10_000;

function connect(url: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client(url, { reconnect: false });
    client.once('open', () => resolve(client));
    client.once('error', (error: unknown) =>
      reject(error instanceof Error ? error : new Error(String((error as { message?: string })?.message ?? error))),
    );
  });
}

function close(client: Client): Promise<void> {
  return new Promise((resolve) => {
    const socket = (client as unknown as { socket?: { readyState: number } }).socket;
    if (!socket || socket.readyState === 3) return resolve();
    client.once('close', () => resolve());
    client.close();
  });
}

/** Resolves with the first `messagesReceived` event satisfying `predicate`. */
function nextMessagesReceived(
  client: Client,
  predicate: (event: MessagesReceived) => boolean,
  timeoutMs = 10_000,
): Promise<MessagesReceived> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('messagesReceived', listener);
      reject(new Error(`no matching messagesReceived event within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (event: MessagesReceived) => {
      if (!predicate(event)) return;
      clearTimeout(timer);
      client.off('messagesReceived', listener);
      resolve(event);
    };
    client.on('messagesReceived', listener);
  });
}

describe('compatibility with the rpc-websockets 7.x client', () => {
  let server: TestServer;
  let client: Client;
  let n = 0;
  const conn = () => `rpcws-${++n}-${Date.now()}`;
  const call = <T = unknown>(method: string, params?: object) => client.call(method, params, CALL_TIMEOUT_MS) as Promise<T>;

  beforeAll(async () => {
    server = await startTestServer();
    client = await connect(server.wsUrl);
  });
  afterAll(async () => {
    if (client) await close(client);
    await server?.close();
  });

  it('calls without params, which this client sends as "params": null (treated as absent)', async () => {
    expect(await call('ping')).toBe('pong');
    // A method with required params then names the missing one, as for a request without params.
    await expect(call('takeFromQueue')).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('connectionId') });
  });

  it('calls every queue method', async () => {
    const c = conn();
    const payloads = [
      { protected: 'p', iv: 'i', ciphertext: 'x'.repeat(50), tag: 't', nested: { a: [1, null, 'ü€😀'] } },
      { second: true },
      { third: 3 },
    ];
    const ids: string[] = [];
    for (const payload of payloads) {
      const result = await call<{ messageId: string }>('addMessage', {
        connectionId: c,
        recipientDids: ['did:example:alice'],
        payload,
        pushNotificationToken: { type: 'fcm', token: 'device-token' },
      });
      expect(result).toEqual({ messageId: expect.any(String) });
      ids.push(result.messageId);
    }
    expect(
      await call('addMessage', { connectionId: c, recipientDids: ['did:example:bob'], payload: { bob: 1 }, messageId: 'client-chosen' }),
    ).toEqual({
      messageId: 'client-chosen',
    });
    expect(await call('getAvailableMessageCount', { connectionId: c })).toBe(4);
    expect(await call('getAvailableMessageCount', { connectionId: c, recipientDid: 'did:example:bob' })).toBe(1);

    const taken = await call<Queued[]>('takeFromQueue', { connectionId: c, recipientDid: 'did:example:alice', limit: 2 });
    expect(taken.map((m) => m.id)).toEqual(ids.slice(0, 2));
    expect(taken.map((m) => m.encryptedMessage)).toEqual(payloads.slice(0, 2));
    for (const message of taken) expect(new Date(message.receivedAt).toISOString()).toBe(message.receivedAt);
    expect(await call('getAvailableMessageCount', { connectionId: c })).toBe(2);

    expect(await call('removeMessages', { connectionId: c, messageIds: taken.map((m) => m.id) })).toBe(true);
    const deleted = await call<Queued[]>('takeFromQueue', { connectionId: c, recipientDid: 'did:example:alice', deleteMessages: true });
    expect(deleted.map((m) => m.encryptedMessage)).toEqual([payloads[2]]);
    expect(await call('removeAllMessages', { connectionId: c, recipientDid: 'did:example:bob' })).toBe(true);
    expect(await call('getAvailableMessageCount', { connectionId: c })).toBe(0);

    await call('addMessage', { connectionId: c, recipientDids: ['did:example:alice'], payload: { again: true } });
    expect(await call('removeAllMessages', { connectionId: c })).toBe(true);
    expect(await call('takeFromQueue', { connectionId: c })).toEqual([]);
  });

  it('calls every live session method', async () => {
    const c = conn();
    expect(await call('getLiveSession', { connectionId: c })).toBe(false);
    expect(await call('addLiveSession', { connectionId: c, sessionId: 's1' })).toBe(true);
    expect(await call('getLiveSession', { connectionId: c })).toBe(true);
    expect(await call('addLiveSession', { connectionId: c, sessionId: 's2', reclaim: true })).toBe(false);
    expect(await call('addLiveSession', { connectionId: c, sessionId: 's1', reclaim: true })).toBe(true);
    expect(await call('removeLiveSession', { connectionId: c, sessionId: 'other' })).toBe(false);
    expect(await call('getLiveSession', { connectionId: c })).toBe(true);
    expect(await call('removeLiveSession', { connectionId: c, sessionId: 's1' })).toBe(true);
    expect(await call('getLiveSession', { connectionId: c })).toBe(false);
    expect(await call('removeLiveSession', { connectionId: c })).toBe(false);
  });

  it('subscribes and unsubscribes with rpc.on / rpc.off', async () => {
    expect(await client.subscribe('messagesReceived')).toEqual({ messagesReceived: 'ok' });
    expect(await client.unsubscribe('messagesReceived')).toEqual({ messagesReceived: 'ok' });
    expect(await client.subscribe('messagesReceived')).toEqual({ messagesReceived: 'ok' });
  });

  it('receives messagesReceived for a live session when another client adds a message', async () => {
    const c = conn();
    const other = await JsonRpcWsClient.connect(server.wsUrl);
    try {
      expect(await client.subscribe('messagesReceived')).toEqual({ messagesReceived: 'ok' });
      const received: MessagesReceived[] = [];
      const all = (event: MessagesReceived) => received.push(event);
      client.on('messagesReceived', all);
      expect(await call('addLiveSession', { connectionId: c, sessionId: `session-${c}` })).toBe(true);

      const payload = {
        protected: 'eyJ',
        recipients: [{ header: { kid: 'did:example:alice#key-1' }, encrypted_key: 'k' }],
        iv: 'iv',
        ciphertext: 'c'.repeat(2000),
        tag: 'tag',
        unicode: 'ü€😀',
      };
      const event = nextMessagesReceived(client, (e) => e.connectionId === c);
      const { messageId } = await other.call<{ messageId: string }>('addMessage', {
        connectionId: c,
        recipientDids: ['did:example:alice'],
        payload,
      });
      const notified = await event;
      expect(notified).toEqual({
        connectionId: c,
        messages: [{ id: messageId, receivedAt: expect.any(String), encryptedMessage: payload }],
      });
      expect(new Date(notified.messages[0].receivedAt).toISOString()).toBe(notified.messages[0].receivedAt);

      // Notified means in flight: not pending, until acknowledged by removeMessages.
      expect(await call('getAvailableMessageCount', { connectionId: c })).toBe(0);
      expect(await call('removeMessages', { connectionId: c, messageIds: [messageId] })).toBe(true);

      // A second message arrives as a second event on the same listener.
      const second = nextMessagesReceived(client, (e) => e.connectionId === c);
      const { messageId: secondId } = await other.call<{ messageId: string }>('addMessage', {
        connectionId: c,
        recipientDids: ['did:example:alice'],
        payload: { n: 2 },
      });
      expect((await second).messages.map((m) => [m.id, m.encryptedMessage])).toEqual([[secondId, { n: 2 }]]);
      client.off('messagesReceived', all);
      expect(received.flatMap((e) => e.messages.map((m) => m.id))).toEqual([messageId, secondId]);
      expect(await call('removeLiveSession', { connectionId: c })).toBe(true);
    } finally {
      await other.close();
    }
  });

  it('surfaces errors as { code, message, data } rejections and the socket stays usable', async () => {
    await expect(call('noSuchMethod', {})).rejects.toMatchObject({ code: -32601, message: expect.stringContaining('noSuchMethod') });
    await expect(call('takeFromQueue', { connectionId: 'c', limit: 0 })).rejects.toMatchObject({
      code: -32602,
      message: expect.stringContaining('limit'),
      data: { retryable: false, field: 'limit' },
    });
    await expect(call('addMessage', { connectionId: 'c', payload: {} })).rejects.toMatchObject({
      code: -32602,
      message: expect.stringContaining('recipientDids'),
    });
    await expect(call('getLiveSession', {})).rejects.toMatchObject({ code: -32602, message: expect.stringContaining('connectionId') });
    expect(await call('ping', {})).toBe('pong');
  });
});
