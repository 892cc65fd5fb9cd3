import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { EventEmitter as NodeEventEmitter } from 'node:events';
import { Subject } from 'rxjs';
// Credo 0.5's own event emitter and enums, loaded from their files: the package index cannot load here
// (its `ky-universal` wants an older `ky` than the one the 0.6 packages hoist).
import { EventEmitter as Credo05EventEmitter } from 'credo-core-05/build/agent/EventEmitter';
import { MessagePickupEventTypes } from 'credo-core-05/build/modules/message-pickup/MessagePickupEvents';
import { MessagePickupSessionRole } from 'credo-core-05/build/modules/message-pickup/MessagePickupSession';
import type { AgentContext } from 'credo-core-05';
import {
  Credo05MessagePickupRepository,
  MessagePickupRepositoryClient,
  wireCredo05LiveSessions,
  type CredoMessagePickupApiLike,
  type CredoPickupSessionLike,
} from '@didcomm-mpr/client';
import { startTestServer, type TestServer } from '../support/test-server';
import { ClientDroppingRelay } from '../support/client-dropping-relay';
import { waitUntil } from '../support/client-waits';

const payload = (n: number) => ({ protected: 'p', iv: 'i', ciphertext: `c${n}`.padEnd(200, 'x'), tag: 't' });

/**
 * The Credo 0.5 adapter and live-session wiring against the real server. A whole 0.5 agent cannot run here
 * (no Askar / indy-sdk wallet installs), so the wiring is driven by Credo 0.5's real EventEmitter and a
 * recording stand-in for `agent.messagePickup` (the two methods the wiring calls).
 */
describe('Credo 0.5 adapter', () => {
  let server: TestServer;
  let relay: ClientDroppingRelay;
  let client: MessagePickupRepositoryClient;
  const maxBytes = new Map<string, number>();

  beforeAll(async () => {
    server = await startTestServer();
    relay = await ClientDroppingRelay.start(server.wsUrl, 'none'); // records, drops nothing
    client = new MessagePickupRepositoryClient({ url: relay.url });
  });

  afterAll(async () => {
    await client?.close();
    await relay?.close();
    await server?.close();
  });

  it('implements MessagePickupRepository: ids, Date receivedAt, maxReceiveBytes, push token', async () => {
    const repository = new Credo05MessagePickupRepository({
      client,
      maxReceiveBytes: (connectionId) => maxBytes.get(connectionId),
      pushNotificationToken: async (connectionId) => ({ type: 'fcm', token: `token-of-${connectionId}` }),
    });
    const connectionId = randomUUID();
    const first = await repository.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(1) });
    const second = await repository.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(2) });
    expect(typeof first).toBe('string');
    const adds = relay.requests.filter((r) => r.method === 'addMessage').map((r) => r.params as Record<string, unknown>);
    expect(adds.slice(-2)).toEqual([
      expect.objectContaining({ messageId: first, pushNotificationToken: { type: 'fcm', token: `token-of-${connectionId}` } }),
      expect.objectContaining({ messageId: second }),
    ]);
    await expect(repository.getAvailableMessageCount({ connectionId })).resolves.toBe(2);

    maxBytes.set(connectionId, 300); // one 200-byte message fits, two do not
    const taken = await repository.takeFromQueue({ connectionId, limit: 10 });
    expect(relay.requests.filter((r) => r.method === 'takeFromQueue').at(-1)!.params).toMatchObject({
      connectionId,
      limit: 10,
      limitBytes: 300,
    });
    expect(taken).toHaveLength(1);
    expect(taken[0]!.id).toBe(first);
    expect(taken[0]!.receivedAt).toBeInstanceOf(Date);
    expect(taken[0]!.encryptedMessage).toEqual(payload(1));

    await repository.removeMessages({ connectionId, messageIds: [first] });
    maxBytes.delete(connectionId);
    const rest = await repository.takeFromQueue({ connectionId, deleteMessages: true });
    expect(rest.map((m) => m.id)).toEqual([second]);
    await expect(repository.getAvailableMessageCount({ connectionId })).resolves.toBe(0);
    await expect(client.getQueueStats({ connectionId })).resolves.toMatchObject({ pending: 0, sending: 0 });
  });

  it('wires live sessions: registers on LiveSessionSaved, delivers notifications with deliverMessages, removes by session id', async () => {
    const events = new Credo05EventEmitter({ EventEmitterClass: NodeEventEmitter } as never, new Subject<boolean>());
    const sessions = new Map<string, CredoPickupSessionLike>();
    const delivered: Array<{ pickupSessionId: string; messages: Array<{ id: string; receivedAt: Date }> }> = [];
    const messagePickup: CredoMessagePickupApiLike = {
      getLiveModeSession: async ({ connectionId }) => sessions.get(connectionId),
      deliverMessages: async (options) => void delivered.push(options),
      deliverMessagesFromQueue: async () => undefined,
    };
    const errors: unknown[] = [];
    const wiring = wireCredo05LiveSessions({ events, messagePickup }, client, { onError: (error) => errors.push(error) });
    const agentContext = { contextCorrelationId: 'default' } as AgentContext;
    const connectionId = randomUUID();
    const session = { id: randomUUID(), connectionId, role: MessagePickupSessionRole.MessageHolder, protocolVersion: 'v2' };
    const recipientSide = { ...session, id: randomUUID(), connectionId: randomUUID(), role: MessagePickupSessionRole.Recipient };
    try {
      sessions.set(connectionId, session);
      events.emit(agentContext, { type: MessagePickupEventTypes.LiveSessionSaved, payload: { session } });
      events.emit(agentContext, { type: MessagePickupEventTypes.LiveSessionSaved, payload: { session: recipientSide } });
      await waitUntil('the session registration', () => client.liveSessions.get(connectionId) === session.id);
      expect(client.liveSessions.has(recipientSide.connectionId)).toBe(false); // only the mediator side is registered

      const sender = new MessagePickupRepositoryClient({ url: server.wsUrl });
      try {
        const { messageId } = await sender.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(3) });
        await waitUntil('the delivery', () => delivered.length === 1);
        expect(delivered[0]!.pickupSessionId).toBe(session.id);
        expect(delivered[0]!.messages).toEqual([{ id: messageId, receivedAt: expect.any(Date), encryptedMessage: payload(3) }]);

        // A session of the same connection held elsewhere under a newer id is not ended by this removal.
        await sender.addLiveSession({ connectionId, sessionId: 'newer-elsewhere' });
        sessions.delete(connectionId);
        events.emit(agentContext, { type: MessagePickupEventTypes.LiveSessionRemoved, payload: { session } });
        await waitUntil('the removal', () => !client.liveSessions.has(connectionId));
        await waitUntil('the removal call', () =>
          relay.requests.some((r) => r.method === 'removeLiveSession' && (r.params as { sessionId?: string }).sessionId === session.id),
        );
        await expect(sender.getLiveSession({ connectionId })).resolves.toBe(true);
      } finally {
        await sender.close();
      }
      expect(errors).toEqual([]);
    } finally {
      wiring.dispose();
    }
  });
});
