import { randomUUID } from 'node:crypto';
import {
  MessagePickupRepositoryClient,
  PickupClientClosedError,
  PickupRpcError,
  RpcErrorCode,
  type MessagesReceivedParams,
} from '@didcomm-mpr/client';
import { startTestServer, type TestServer } from '../support/test-server';
import { waitUntil } from '../support/client-waits';

/** Every JSON-RPC method through the client, against the real server and PostgreSQL. */
describe('MessagePickupRepositoryClient against the server', () => {
  let server: TestServer;
  let client: MessagePickupRepositoryClient;
  const payload = (n: number) => ({ protected: 'p', iv: 'i', ciphertext: `c${n}`, tag: 't' });

  beforeAll(async () => {
    server = await startTestServer({ AUTH_TOKENS: 'secret-1,secret-2', MAX_QUEUE_MESSAGES: '5' });
    client = new MessagePickupRepositoryClient({ url: server.wsUrl, token: 'secret-2', requestTimeoutMs: 5_000 });
    await client.connect();
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  it('pings', async () => {
    await expect(client.ping()).resolves.toBe('pong');
  });

  it('adds with a fresh UUID messageId, takes, counts, removes', async () => {
    const connectionId = randomUUID();
    const first = await client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(1) });
    const second = await client.addMessage({ connectionId, recipientDids: ['did:key:carol'], payload: payload(2) });
    expect(first.messageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(second.messageId).not.toBe(first.messageId);

    await expect(client.getAvailableMessageCount({ connectionId })).resolves.toBe(2);
    await expect(client.getAvailableMessageCount({ connectionId, recipientDid: 'did:key:bob' })).resolves.toBe(1);
    const stats = await client.getQueueStats({ connectionId });
    expect(stats).toMatchObject({ pending: 2, sending: 0 });
    expect(stats.bytes).toBeGreaterThan(0);

    const taken = await client.takeFromQueue({ connectionId, limit: 10 });
    expect(taken.map((m) => m.id)).toEqual([first.messageId, second.messageId]);
    expect(taken[0]!.encryptedMessage).toEqual(payload(1));
    expect(Number.isNaN(Date.parse(taken[0]!.receivedAt))).toBe(false);
    await expect(client.getAvailableMessageCount({ connectionId })).resolves.toBe(0);
    await expect(client.getQueueStats({ connectionId })).resolves.toMatchObject({ pending: 0, sending: 2 });

    await expect(client.removeMessages({ connectionId, messageIds: taken.map((m) => m.id) })).resolves.toBe(true);
    await expect(client.getQueueStats({ connectionId })).resolves.toMatchObject({ pending: 0, sending: 0, oldestReceivedAt: null });
  });

  it('keeps a given messageId idempotent', async () => {
    const connectionId = randomUUID();
    const messageId = randomUUID();
    await client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(1), messageId });
    await client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(1), messageId });
    await expect(client.getAvailableMessageCount({ connectionId })).resolves.toBe(1);
  });

  it('takes within limitBytes and deletes at once with deleteMessages', async () => {
    const connectionId = randomUUID();
    for (let n = 0; n < 3; n++) await client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(n) });
    const one = await client.takeFromQueue({ connectionId, limitBytes: 1 });
    expect(one).toHaveLength(1);
    const rest = await client.takeFromQueue({ connectionId, deleteMessages: true });
    expect(rest).toHaveLength(2);
    await expect(client.getQueueStats({ connectionId })).resolves.toMatchObject({ pending: 0, sending: 1 });
  });

  it('removes all messages, for one recipient or all', async () => {
    const connectionId = randomUUID();
    await client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(1) });
    await client.addMessage({ connectionId, recipientDids: ['did:key:carol'], payload: payload(2) });
    await expect(client.removeAllMessages({ connectionId, recipientDid: 'did:key:bob' })).resolves.toBe(true);
    await expect(client.getAvailableMessageCount({ connectionId })).resolves.toBe(1);
    await expect(client.removeAllMessages({ connectionId })).resolves.toBe(true);
    await expect(client.getAvailableMessageCount({ connectionId })).resolves.toBe(0);
  });

  it('holds live sessions and receives messagesReceived notifications', async () => {
    const connectionId = randomUUID();
    const received: MessagesReceivedParams[] = [];
    const stop = client.onMessagesReceived((notification) => received.push(notification));
    try {
      await expect(client.getLiveSession({ connectionId })).resolves.toBe(false);
      await expect(client.addLiveSession({ connectionId, sessionId: 's1' })).resolves.toBe(true);
      expect(client.liveSessions.get(connectionId)).toBe('s1');
      await expect(client.getLiveSession({ connectionId })).resolves.toBe(true);

      const { messageId } = await client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(7) });
      await waitUntil('the live notification', () => received.length === 1);
      expect(received[0]).toEqual({
        connectionId,
        messages: [{ id: messageId, receivedAt: expect.any(String), encryptedMessage: payload(7) }],
      });

      // A removal naming another session leaves this one alone.
      await expect(client.removeLiveSession({ connectionId, sessionId: 'other' })).resolves.toBe(false);
      await expect(client.getLiveSession({ connectionId })).resolves.toBe(true);
      await expect(client.removeLiveSession({ connectionId, sessionId: 's1' })).resolves.toBe(true);
      expect(client.liveSessions.has(connectionId)).toBe(false);
      await expect(client.getLiveSession({ connectionId })).resolves.toBe(false);
    } finally {
      stop();
    }
  });

  it('refuses a reclaim of a session held under another id', async () => {
    const connectionId = randomUUID();
    await client.addLiveSession({ connectionId, sessionId: 'a' });
    await expect(client.addLiveSession({ connectionId, sessionId: 'b', reclaim: true })).resolves.toBe(false);
    await client.removeLiveSession({ connectionId });
  });

  it('rejects with the JSON-RPC code and message', async () => {
    const error = await client.addMessage({ connectionId: randomUUID(), recipientDids: [], payload: payload(1) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PickupRpcError);
    expect(error).toMatchObject({ code: RpcErrorCode.InvalidParams, method: 'addMessage', retryable: false });
    expect((error as PickupRpcError).data?.field).toBe('recipientDids');
    expect((error as Error).message).toContain('addMessage failed');

    const connectionId = randomUUID();
    for (let n = 0; n < 5; n++) await client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(n) });
    await expect(client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(6) })).rejects.toMatchObject({
      code: RpcErrorCode.QueueFull,
      retryable: false,
    });
  });

  it('is refused without the right token, with the HTTP status in the timeout error', async () => {
    const intruder = new MessagePickupRepositoryClient({
      url: server.wsUrl,
      token: 'wrong',
      requestTimeoutMs: 600,
      reconnectBaseDelayMs: 50,
    });
    try {
      await expect(intruder.ping()).rejects.toThrow(/ping timed out after 600 ms: no connection .*HTTP 401/);
    } finally {
      await intruder.close();
    }
  });

  it('closes cleanly: waiting and later calls fail with PickupClientClosedError', async () => {
    const other = new MessagePickupRepositoryClient({ url: server.wsUrl, token: 'secret-1' });
    const connectionId = randomUUID();
    await other.addLiveSession({ connectionId, sessionId: 's' });
    await other.close();
    await expect(other.ping()).rejects.toBeInstanceOf(PickupClientClosedError);
    // The server ended the closed client's session.
    await waitUntil('the session to end', async () => (await client.getLiveSession({ connectionId })) === false);
  });
});
