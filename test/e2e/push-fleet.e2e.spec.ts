import { randomBytes } from 'node:crypto';
import { FcmAppFactory } from '../../apps/server/src/push/fcm-app.factory';
import { FakeFcmServer, fakeServiceAccountFiles, FleetRedis, JsonRpcWsClient, REDIS_TOPOLOGIES } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * Push decisions across a fleet (issue 4): two instances on one PostgreSQL and one Redis (a single node, then a
 * 3-master cluster). A live session held on one instance stops pushes for messages added through the other;
 * coalescing windows and trailing pushes are shared whichever instance received the messages.
 */

jest.setTimeout(90_000);

/** Long enough that "inside the window" assertions hold on a loaded machine. */
const WINDOW_MS = 3_000;
const QUIET_MS = 400;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const uniqueId = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

describe.each(REDIS_TOPOLOGIES)('push across two instances over %s', (_name, startRedis) => {
  let fake: FakeFcmServer;
  let accounts: ReturnType<typeof fakeServiceAccountFiles>;
  let redis: FleetRedis;
  let a: TestServer;
  let b: TestServer;
  let clientA: JsonRpcWsClient;
  let clientB: JsonRpcWsClient;

  beforeAll(async () => {
    fake = await FakeFcmServer.start();
    accounts = fakeServiceAccountFiles(['project-fleet']);
    jest.spyOn(FcmAppFactory.prototype, 'appOptions').mockImplementation(() => fake.appOptions('project-fleet'));
    redis = await startRedis();
    const env = {
      ...redis.env,
      FIREBASE_CREDENTIALS: accounts.files['project-fleet'],
      PUSH_COALESCE_WINDOW_MS: String(WINDOW_MS),
      PUSH_RETRY_BASE_MS: '100',
      SESSION_LEASE_MS: '3000',
    };
    a = await startTestServer({ ...env, INSTANCE_ID: 'push-a' });
    b = await startTestServer({ ...env, INSTANCE_ID: 'push-b' }, a.databaseUrl);
    clientA = await JsonRpcWsClient.connect(a.wsUrl);
    clientB = await JsonRpcWsClient.connect(b.wsUrl);
  });

  afterAll(async () => {
    await clientA?.closeQuietly();
    await clientB?.closeQuietly();
    await b?.stop();
    await a?.close();
    await redis?.close();
    await fake?.close();
    accounts?.remove();
    jest.restoreAllMocks();
  });

  const add = async (client: JsonRpcWsClient, connectionId: string, token: string): Promise<string> => {
    const { messageId } = await client.call<{ messageId: string }>('addMessage', {
      connectionId,
      recipientDids: ['did:example:bob'],
      payload: { ciphertext: 'c' },
      pushNotificationToken: { type: 'fcm', token },
    });
    return messageId;
  };

  it('sends nothing for a message added on B while the session is held on A', async () => {
    const connectionId = uniqueId('live-elsewhere');
    const token = uniqueId('token');
    await clientA.call('addLiveSession', { connectionId, sessionId: 's1' });
    await add(clientB, connectionId, token);
    await clientA.waitFor(() => clientA.notifiedIds(connectionId).length === 1);
    await sleep(QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(0);
    await clientA.call('removeLiveSession', { connectionId });
  });

  it('coalesces messages added on both instances into one push', async () => {
    const connectionId = uniqueId('both');
    const token = uniqueId('token');
    await Promise.all([
      add(clientA, connectionId, token),
      add(clientB, connectionId, token),
      add(clientA, connectionId, token),
      add(clientB, connectionId, token),
    ]);
    await fake.waitFor(1, (r) => r.body.message.token === token);
    await clientA.call('takeFromQueue', { connectionId, deleteMessages: true });
    await sleep(WINDOW_MS + QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(1);
  });

  it('sends the trailing push for a message coalesced on the other instance', async () => {
    const connectionId = uniqueId('trailing');
    const token = uniqueId('token');
    await add(clientA, connectionId, token);
    await fake.waitFor(1, (r) => r.body.message.token === token);
    await clientA.call('takeFromQueue', { connectionId, deleteMessages: true });
    const late = await add(clientB, connectionId, token);
    await sleep(QUIET_MS / 2);
    expect(fake.requestsFor(token)).toHaveLength(1);
    const [, trailing] = await fake.waitFor(2, (r) => r.body.message.token === token, WINDOW_MS + 10_000);
    expect(trailing.body.message.data).toEqual({ connectionId, messageId: late });
  });

  it('checks every connection folded into the device window, whichever instance folded it', async () => {
    const opener = uniqueId('opener');
    const other = uniqueId('other');
    const token = uniqueId('token');
    await add(clientA, opener, token);
    await fake.waitFor(1, (r) => r.body.message.token === token);
    const waiting = await add(clientB, other, token);
    await add(clientB, opener, token);
    await sleep(QUIET_MS / 2);
    expect(fake.requestsFor(token)).toHaveLength(1);
    // The opener's queue is emptied; the other connection of the same device still has its message.
    await clientA.call('takeFromQueue', { connectionId: opener, deleteMessages: true });
    const [, trailing] = await fake.waitFor(2, (r) => r.body.message.token === token, WINDOW_MS + 10_000);
    expect(trailing.body.message.data).toEqual({ connectionId: other, messageId: waiting });
    await sleep(QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(2);
  });

  it('clears the window when a session starts: the next message after it ends is pushed at once', async () => {
    const connectionId = uniqueId('session-clears');
    const token = uniqueId('token');
    await add(clientA, connectionId, token);
    await fake.waitFor(1, (r) => r.body.message.token === token);
    await clientA.call('takeFromQueue', { connectionId, deleteMessages: true });
    // The device connects (through B) and goes away again, all inside the window.
    await clientB.call('addLiveSession', { connectionId, sessionId: 's1' });
    await clientB.call('removeLiveSession', { connectionId, sessionId: 's1' });
    const addedAt = Date.now();
    await add(clientA, connectionId, token);
    const [first, second] = await fake.waitFor(2, (r) => r.body.message.token === token, WINDOW_MS + 10_000);
    // Folded into a window still open, it would have waited for the window's end (a trailing push) instead.
    expect(second.at - first.at).toBeLessThan(WINDOW_MS);
    expect(second.at).toBeGreaterThanOrEqual(addedAt);
  });
});
