import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import {
  MessagePickupRepositoryClient,
  PickupTimeoutError,
  type LiveSessionReclaimEvent,
  type MessagesReceivedParams,
} from '@didcomm-mpr/client';
import { findFreePort } from '@didcomm-mpr/test-kit';
import { startTestServer, type TestServer } from '../support/test-server';
import { ClientDroppingRelay } from '../support/client-dropping-relay';
import { sleep, waitUntil } from '../support/client-waits';

const payload = { protected: 'p', iv: 'i', ciphertext: 'c', tag: 't' };

/** Reconnects, failover, timeouts and retries of the client, against real servers (restarted in-process on one database). */
describe('MessagePickupRepositoryClient resilience', () => {
  const clients: MessagePickupRepositoryClient[] = [];
  const servers: TestServer[] = [];
  const track = (client: MessagePickupRepositoryClient) => (clients.push(client), client);
  const start = async (env: Record<string, string>, databaseUrl?: string) => {
    const server = await startTestServer(env, databaseUrl);
    servers.push(server);
    return server;
  };

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    for (const server of servers.splice(0).reverse()) await server.close();
  });

  it('re-registers its live sessions after a server restart, without duplicate callbacks, and calls made meanwhile wait', async () => {
    const port = await findFreePort();
    const first = await start({ PORT: String(port) });
    const url = `ws://127.0.0.1:${port}`;
    const mediator = track(new MessagePickupRepositoryClient({ url, reconnectBaseDelayMs: 50, reconnectMaxDelayMs: 200 }));
    const sender = track(new MessagePickupRepositoryClient({ url, reconnectBaseDelayMs: 50, reconnectMaxDelayMs: 200 }));
    const connectionId = randomUUID();
    const notified: MessagesReceivedParams[] = [];
    const reclaims: LiveSessionReclaimEvent[] = [];
    mediator.onMessagesReceived((notification) => notified.push(notification));
    mediator.onLiveSessionReclaim((event) => reclaims.push(event));
    let disconnects = 0;
    mediator.onDisconnect(() => disconnects++);

    await expect(mediator.addLiveSession({ connectionId, sessionId: 'session-1' })).resolves.toBe(true);
    const before = await sender.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload });
    await waitUntil('the first notification', () => notified.length === 1);

    await first.stop();
    await waitUntil('the disconnect', () => disconnects === 1 && !mediator.connected);
    const waitingPing = mediator.ping(); // made while no server is up
    await sleep(300);
    await start({ PORT: String(port) }, first.databaseUrl);

    await expect(waitingPing).resolves.toBe('pong');
    await waitUntil('the session re-registration', () => reclaims.length === 1);
    expect(reclaims[0]).toEqual({ connectionId, sessionId: 'session-1', reclaimed: true });
    await expect(sender.getLiveSession({ connectionId })).resolves.toBe(true);

    const after = await sender.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload });
    await waitUntil('the second notification', () => notified.length === 2);
    await sleep(300); // room for any duplicate to show up
    expect(notified.map((n) => n.messages.map((m) => m.id))).toEqual([[before.messageId], [after.messageId]]);
    // The first message, unacknowledged when the session ended, is pending again for the next take.
    await expect(mediator.takeFromQueue({ connectionId })).resolves.toEqual([expect.objectContaining({ id: before.messageId })]);
  });

  it('does not take back a session that another mediator took while it was disconnected', async () => {
    const port = await findFreePort();
    const first = await start({ PORT: String(port) });
    const url = `ws://127.0.0.1:${port}`;
    // Slow to come back, so the other mediator registers first.
    const slow = track(new MessagePickupRepositoryClient({ url, reconnectBaseDelayMs: 1_500, reconnectMaxDelayMs: 1_500 }));
    const connectionId = randomUUID();
    const reclaims: LiveSessionReclaimEvent[] = [];
    slow.onLiveSessionReclaim((event) => reclaims.push(event));
    await slow.addLiveSession({ connectionId, sessionId: 'old' });
    await first.stop();
    await start({ PORT: String(port) }, first.databaseUrl);
    const other = track(new MessagePickupRepositoryClient({ url }));
    await expect(other.addLiveSession({ connectionId, sessionId: 'new' })).resolves.toBe(true);

    await waitUntil('the refused re-registration', () => reclaims.length === 1, 5_000);
    expect(reclaims[0]).toEqual({ connectionId, sessionId: 'old', reclaimed: false });
    expect(slow.liveSessions.has(connectionId)).toBe(false);
    const notified: MessagesReceivedParams[] = [];
    other.onMessagesReceived((notification) => notified.push(notification));
    await other.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload });
    await waitUntil('the notification to the new holder', () => notified.length === 1);
  });

  it('fails over to the next URL, at connect and when its server shuts down', async () => {
    const deadPort = await findFreePort();
    const a = await start({});
    const b = await start({}, a.databaseUrl);
    const client = track(
      new MessagePickupRepositoryClient({ urls: [`ws://127.0.0.1:${deadPort}`, a.wsUrl, b.wsUrl], reconnectBaseDelayMs: 50 }),
    );
    const connectionId = randomUUID();
    await expect(client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload })).resolves.toBeDefined();
    await a.stop();
    await expect(client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload })).resolves.toBeDefined();
    await expect(client.getAvailableMessageCount({ connectionId })).resolves.toBe(2);
    expect(client.connected).toBe(true);
  });

  it('resends a lost addMessage with the same messageId after reconnecting, so it is stored once', async () => {
    const server = await start({});
    const relay = await ClientDroppingRelay.start(server.wsUrl, 'addMessage');
    try {
      const client = track(new MessagePickupRepositoryClient({ url: relay.url, reconnectBaseDelayMs: 50 }));
      const connectionId = randomUUID();
      const { messageId } = await client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload });
      const adds = relay.requests.filter((request) => request.method === 'addMessage');
      expect(adds).toHaveLength(2);
      expect(adds.map((add) => (add.params as { messageId: string }).messageId)).toEqual([messageId, messageId]);
      await expect(client.getAvailableMessageCount({ connectionId })).resolves.toBe(1);
    } finally {
      await relay.close();
    }
  });

  it('times out a call the server does not answer, naming the method', async () => {
    const silent = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => silent.once('listening', () => resolve()));
    try {
      const client = track(
        new MessagePickupRepositoryClient({ url: `ws://127.0.0.1:${(silent.address() as AddressInfo).port}`, requestTimeoutMs: 300 }),
      );
      const error = await client.takeFromQueue({ connectionId: 'c' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PickupTimeoutError);
      expect((error as Error).message).toBe('takeFromQueue timed out after 300 ms: no answer from the server');
      expect(error).toMatchObject({ method: 'takeFromQueue', timeoutMs: 300, connected: true });
    } finally {
      for (const socket of silent.clients) socket.terminate();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('times out a call made while no server can be reached, saying why', async () => {
    const port = await findFreePort();
    const client = track(
      new MessagePickupRepositoryClient({ url: `ws://127.0.0.1:${port}`, requestTimeoutMs: 400, reconnectBaseDelayMs: 50 }),
    );
    const startedAt = Date.now();
    await expect(client.getAvailableMessageCount({ connectionId: 'c' })).rejects.toThrow(
      new RegExp(
        `^getAvailableMessageCount timed out after 400 ms: no connection to the Message Pickup Repository \\(last connection error: ws://127.0.0.1:${port}: .*ECONNREFUSED`,
      ),
    );
    expect(Date.now() - startedAt).toBeLessThan(1_500);
  });
});
