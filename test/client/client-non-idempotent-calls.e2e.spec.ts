import { randomUUID } from 'node:crypto';
import {
  Credo05MessagePickupRepository,
  Credo06QueueTransportRepository,
  MessagePickupRepositoryClient,
  PickupConnectionLostError,
} from '@didcomm-mpr/client';
import { startTestServer, type TestServer } from '../support/test-server';
import { ClientDroppingRelay } from '../support/client-dropping-relay';
import { waitUntil } from '../support/client-waits';

const payload = (n: number) => ({ protected: 'p', iv: 'i', ciphertext: `c${n}`, tag: 't' });

/**
 * Calls that are not safe to repeat are never resent after a lost answer, and the Credo adapters never
 * delete in the take, so a lost answer cannot lose a batch (real server, a relay that cuts the client's
 * socket right after the server answered).
 */
describe('MessagePickupRepositoryClient: calls not safe to repeat', () => {
  let server: TestServer;
  const relays: ClientDroppingRelay[] = [];
  const clients: MessagePickupRepositoryClient[] = [];
  const relayDropping = async (method: string) => {
    const relay = await ClientDroppingRelay.start(server.wsUrl, method);
    relays.push(relay);
    const client = new MessagePickupRepositoryClient({ url: relay.url, reconnectBaseDelayMs: 50 });
    clients.push(client);
    return { relay, client };
  };
  const add = (client: MessagePickupRepositoryClient, connectionId: string, n: number) =>
    client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload(n) }).then((result) => result.messageId);

  beforeAll(async () => {
    server = await startTestServer({ REDELIVERY_TIMEOUT_MS: '1000' });
  });

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await Promise.all(relays.splice(0).map((relay) => relay.close()));
  });

  afterAll(async () => {
    await server?.close();
  });

  it('fails takeFromQueue with deleteMessages with a retryable PickupConnectionLostError when its answer is lost, instead of taking the next batch', async () => {
    const { relay, client } = await relayDropping('takeFromQueue');
    const connectionId = randomUUID();
    await add(client, connectionId, 1);
    const second = await add(client, connectionId, 2);

    const error = await client.takeFromQueue({ connectionId, limit: 1, deleteMessages: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PickupConnectionLostError);
    expect(error).toMatchObject({ method: 'takeFromQueue', retryable: true });
    expect((error as Error).message).toMatch(/not sent again/);
    expect(relay.requestsOf('takeFromQueue')).toHaveLength(1);
    // The second message was not taken (and deleted) by a resend.
    await expect(client.takeFromQueue({ connectionId })).resolves.toEqual([expect.objectContaining({ id: second })]);
  });

  it('does not resend removeAllMessages after a lost answer (it would delete messages added since)', async () => {
    const { relay, client } = await relayDropping('removeAllMessages');
    const connectionId = randomUUID();
    await add(client, connectionId, 1);
    await expect(client.removeAllMessages({ connectionId })).rejects.toBeInstanceOf(PickupConnectionLostError);
    expect(relay.requestsOf('removeAllMessages')).toHaveLength(1);
  });

  it('does not resend removeLiveSession without sessionId after a lost answer, but resends one with sessionId', async () => {
    const { relay, client } = await relayDropping('removeLiveSession');
    const connectionId = randomUUID();
    await client.addLiveSession({ connectionId, sessionId: 's1' });
    await expect(client.removeLiveSession({ connectionId })).rejects.toBeInstanceOf(PickupConnectionLostError);
    expect(relay.requestsOf('removeLiveSession')).toHaveLength(1);

    const other = await relayDropping('removeLiveSession');
    await other.client.addLiveSession({ connectionId, sessionId: 's2' });
    await expect(other.client.removeLiveSession({ connectionId, sessionId: 's2' })).resolves.toBe(false); // the resend finds it gone
    expect(other.relay.requestsOf('removeLiveSession')).toHaveLength(2);
  });

  it.each([
    [
      'Credo 0.5',
      (client: MessagePickupRepositoryClient) => (options: { connectionId: string; limit: number; deleteMessages: boolean }) =>
        new Credo05MessagePickupRepository({ client }).takeFromQueue(options),
    ],
    [
      'Credo 0.6',
      (client: MessagePickupRepositoryClient) => (options: { connectionId: string; limit: number; deleteMessages: boolean }) =>
        new Credo06QueueTransportRepository({ client }).takeFromQueue({}, options),
    ],
  ])(
    '%s adapter: a take with deleteMessages whose answer is lost loses no message (take, then removeMessages)',
    async (_line, makeTake) => {
      const { relay, client } = await relayDropping('takeFromQueue');
      const take = makeTake(client);
      const connectionId = randomUUID();
      const first = await add(client, connectionId, 1);
      const second = await add(client, connectionId, 2);

      // The first take's answer (the first message) is lost; the resent take gets the second one.
      await expect(take({ connectionId, limit: 1, deleteMessages: true })).resolves.toEqual([expect.objectContaining({ id: second })]);
      const takes = relay.requestsOf('takeFromQueue');
      expect(takes).toHaveLength(2);
      for (const request of takes) expect(request.params).not.toHaveProperty('deleteMessages');
      expect(relay.requestsOf('removeMessages').map((request) => request.params)).toEqual([{ connectionId, messageIds: [second] }]);

      // The first message was only marked sending: it comes back at the redelivery timeout, and is deleted once delivered.
      await expect(client.getQueueStats({ connectionId })).resolves.toMatchObject({ pending: 0, sending: 1 });
      let again: Array<{ id: string }> = [];
      await waitUntil(
        'the lost message to come back',
        async () => (again = await take({ connectionId, limit: 1, deleteMessages: true })).length > 0,
        10_000,
      );
      expect(again.map((message) => message.id)).toEqual([first]);
      await expect(client.getQueueStats({ connectionId })).resolves.toMatchObject({ pending: 0, sending: 0 });
    },
  );
});
