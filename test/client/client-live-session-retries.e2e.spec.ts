import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import {
  LiveSessionWiring,
  MessagePickupRepositoryClient,
  PickupTimeoutError,
  type CredoEventsLike,
  type CredoMessagePickupApiLike,
  type CredoPickupSessionLike,
  type LiveSessionReclaimEvent,
} from '@didcomm-mpr/client';
import { startTestServer, type TestServer } from '../support/test-server';
import { ClientDroppingRelay, type RelayRules } from '../support/client-dropping-relay';
import { waitUntil } from '../support/client-waits';

const payload = { protected: 'p', iv: 'i', ciphertext: 'c', tag: 't' };

/**
 * Live-session registrations and removals survive failures: a failed registration or removal is retried,
 * a registration whose answer was lost is resent with `reclaim: true`, and the wiring ends a server
 * session the agent no longer has (real server; a relay that loses or swallows chosen requests).
 */
describe('MessagePickupRepositoryClient: live session retries', () => {
  let server: TestServer;
  let observer: MessagePickupRepositoryClient;
  const relays: ClientDroppingRelay[] = [];
  const clients: MessagePickupRepositoryClient[] = [];
  const through = async (rules: RelayRules, options: { requestTimeoutMs?: number; reconnectBaseDelayMs?: number } = {}) => {
    const relay = await ClientDroppingRelay.start(server.wsUrl, rules);
    relays.push(relay);
    const client = new MessagePickupRepositoryClient({ url: relay.url, reconnectBaseDelayMs: 50, ...options });
    clients.push(client);
    return { relay, client };
  };

  beforeAll(async () => {
    server = await startTestServer();
    observer = new MessagePickupRepositoryClient({ url: server.wsUrl });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await Promise.all(relays.splice(0).map((relay) => relay.close()));
  });

  afterAll(async () => {
    await observer?.close();
    await server?.close();
  });

  it('records a registration before the call and retries it with reclaim after it failed, until the server holds it', async () => {
    const { relay, client } = await through({ swallow: 'addLiveSession' }, { requestTimeoutMs: 400 });
    const connectionId = randomUUID();
    const reclaims: LiveSessionReclaimEvent[] = [];
    client.onLiveSessionReclaim((event) => reclaims.push(event));

    const registration = client.addLiveSession({ connectionId, sessionId: 's1' });
    expect(client.liveSessions.get(connectionId)).toBe('s1'); // recorded before the answer
    await expect(registration).rejects.toBeInstanceOf(PickupTimeoutError);
    expect(client.liveSessions.get(connectionId)).toBe('s1'); // still wanted

    await waitUntil('the retried registration', () => observer.getLiveSession({ connectionId }), 5_000);
    await waitUntil('the reclaim event', () => reclaims.length > 0);
    expect(reclaims[0]).toEqual({ connectionId, sessionId: 's1', reclaimed: true });
    expect(relay.requestsOf('addLiveSession').map((request) => request.params)).toEqual([
      { connectionId, sessionId: 's1' },
      { connectionId, sessionId: 's1', reclaim: true },
    ]);
  });

  it('does not retry a registration that removeLiveSession dropped meanwhile', async () => {
    const { relay, client } = await through({ swallow: 'addLiveSession' }, { requestTimeoutMs: 300 });
    const connectionId = randomUUID();
    await expect(client.addLiveSession({ connectionId, sessionId: 's1' })).rejects.toBeInstanceOf(PickupTimeoutError);
    await client.removeLiveSession({ connectionId, sessionId: 's1' });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(relay.requestsOf('addLiveSession')).toHaveLength(1);
    await expect(observer.getLiveSession({ connectionId })).resolves.toBe(false);
  });

  it('resends a registration whose answer was lost with reclaim: true, so it does not take back a session another mediator took meanwhile', async () => {
    // Slow to reconnect, so the other mediator registers while this one is away.
    const { relay, client } = await through({ dropAnswerOf: 'addLiveSession' }, { reconnectBaseDelayMs: 1_000 });
    const connectionId = randomUUID();
    await client.connect();
    const registration = client.addLiveSession({ connectionId, sessionId: 'old' });
    await waitUntil('the lost answer', () => relay.connections === 1 && !client.connected);
    await expect(observer.addLiveSession({ connectionId, sessionId: 'newer' })).resolves.toBe(true);

    await expect(registration).resolves.toBe(false);
    expect(relay.requestsOf('addLiveSession').map((request) => request.params)).toEqual([
      { connectionId, sessionId: 'old' },
      { connectionId, sessionId: 'old', reclaim: true },
    ]);
    expect(client.liveSessions.has(connectionId)).toBe(false);
    // The newer session is still the observer's: a message for it is pushed there.
    const pushed: string[] = [];
    const stop = observer.onMessagesReceived((notification) => pushed.push(notification.connectionId));
    try {
      await observer.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload });
      await waitUntil('the push to the newer session', () => pushed.includes(connectionId));
    } finally {
      stop();
      await observer.removeLiveSession({ connectionId, sessionId: 'newer' });
    }
  });

  it('retries a removal by session id that failed, until the server has removed the session', async () => {
    const { relay, client } = await through({ swallow: 'removeLiveSession' }, { requestTimeoutMs: 400 });
    const connectionId = randomUUID();
    await client.addLiveSession({ connectionId, sessionId: 's1' });
    await expect(client.removeLiveSession({ connectionId, sessionId: 's1' })).rejects.toBeInstanceOf(PickupTimeoutError);
    expect(client.liveSessions.has(connectionId)).toBe(false);
    expect(client.pendingLiveSessionRemovals.get(connectionId)).toEqual(['s1']);

    await waitUntil('the retried removal', async () => (await observer.getLiveSession({ connectionId })) === false, 5_000);
    await waitUntil('the removal to be settled', () => !client.pendingLiveSessionRemovals.has(connectionId));
    expect(relay.requestsOf('removeLiveSession')).toHaveLength(2);
  });

  it('wiring: a notification for a session the agent no longer has ends the server session at once, making the message pending again', async () => {
    // The wiring's removal is swallowed and still waiting for its (long) timeout when the notification comes.
    const { client } = await through({ swallow: 'removeLiveSession' }, { requestTimeoutMs: 20_000 });
    const events = new EventEmitter();
    // Credo's event listeners may be async; Node's EventEmitter calls them and ignores the promise, as Credo's does.
    /* eslint-disable @typescript-eslint/no-misused-promises */
    const agentEvents: CredoEventsLike = {
      on: (event, listener) => events.on(event, listener),
      off: (event, listener) => events.off(event, listener),
    };
    /* eslint-enable @typescript-eslint/no-misused-promises */
    const sessions = new Map<string, CredoPickupSessionLike>();
    const delivered: unknown[] = [];
    const pickup: CredoMessagePickupApiLike = {
      getLiveModeSession: async ({ connectionId }) => sessions.get(connectionId),
      deliverMessages: async (options) => void delivered.push(options),
      deliverMessagesFromQueue: async () => undefined,
    };
    const errors: Array<{ error: unknown; context: string }> = [];
    const wiring = new LiveSessionWiring(client, agentEvents, pickup, { saved: 'saved', removed: 'removed' }, (error, context) =>
      errors.push({ error, context }),
    );
    const connectionId = randomUUID();
    const session = { id: randomUUID(), connectionId, role: 'MessageHolder' };
    try {
      sessions.set(connectionId, session);
      events.emit('saved', { payload: { session } });
      await waitUntil('the registration', () => observer.getLiveSession({ connectionId }));
      sessions.delete(connectionId);
      events.emit('removed', { payload: { session } });
      await waitUntil('the removal to be pending', () => client.pendingLiveSessionRemovals.has(connectionId));

      const { messageId } = await observer.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload });
      // Pending again at once (well before any redelivery timeout), and the session is gone.
      await waitUntil(
        'the message to be pending again',
        async () => (await observer.getAvailableMessageCount({ connectionId })) === 1,
        3_000,
      );
      await expect(observer.getLiveSession({ connectionId })).resolves.toBe(false);
      await expect(observer.takeFromQueue({ connectionId })).resolves.toEqual([expect.objectContaining({ id: messageId })]);
      expect(delivered).toEqual([]);
    } finally {
      wiring.dispose();
    }
  });
});
