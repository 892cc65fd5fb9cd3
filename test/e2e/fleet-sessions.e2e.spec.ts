import { randomBytes } from 'node:crypto';
import {
  createTestDatabase,
  FleetRedis,
  JsonRpcWsClient,
  REDIS_TOPOLOGIES,
  ServerProcess,
  startRedisSingle,
  tail,
} from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * Fleet-wide live sessions (issue 3, "Cluster-wide live sessions"): one holder per connectionId across
 * every instance on one PostgreSQL and one Redis; `getLiveSession` answers the same everywhere; takeover,
 * `reclaim` and `sessionId` fencing hold across instances; a crashed instance's sessions vanish within
 * `SESSION_LEASE_MS` and its `sending` messages become takeable again.
 */

jest.setTimeout(60_000);

interface Queued {
  id: string;
  receivedAt: string;
  encryptedMessage: Record<string, unknown>;
}

/** How long a negative ("not notified") check waits for a notification that must not come. */
const QUIET_MS = 300;
const DELIVERY_MS = 5_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A connectionId unique to this run, so tests on the same database never see each other's messages. */
const uniqueId = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

const payloadFor = (label: string) => ({ protected: 'eyJ0eXAiOiJKV00ifQ', ciphertext: `ct-${label}`, tag: 't', iv: 'iv' });

async function addMessage(client: JsonRpcWsClient, connectionId: string, label: string): Promise<string> {
  const { messageId } = await client.call<{ messageId: string }>('addMessage', {
    connectionId,
    recipientDids: ['did:example:r'],
    payload: payloadFor(label),
  });
  return messageId;
}

async function takeAll(client: JsonRpcWsClient, connectionId: string): Promise<Queued[]> {
  const all: Queued[] = [];
  for (let round = 0; round < 100; round++) {
    const batch = await client.call<Queued[]>('takeFromQueue', { connectionId });
    if (batch.length === 0) return all;
    all.push(...batch);
  }
  throw new Error(`takeFromQueue kept returning messages for ${connectionId}`);
}

describe.each(REDIS_TOPOLOGIES)('fleet-wide live sessions, two instances over %s', (_name, startRedis) => {
  let redis: FleetRedis | undefined;
  let a: TestServer | undefined;
  let b: TestServer | undefined;
  const clients: JsonRpcWsClient[] = [];

  /** A socket to instance A or B, closed in afterAll. */
  async function socketTo(server: TestServer): Promise<JsonRpcWsClient> {
    const client = await JsonRpcWsClient.connect(server.wsUrl);
    clients.push(client);
    return client;
  }

  /** getLiveSession as each instance answers it, asked through a fresh socket on each. */
  async function liveOnBoth(connectionId: string): Promise<{ a: boolean; b: boolean }> {
    const [onA, onB] = await Promise.all([socketTo(a!), socketTo(b!)]);
    const [resultA, resultB] = await Promise.all([
      onA.call<boolean>('getLiveSession', { connectionId }),
      onB.call<boolean>('getLiveSession', { connectionId }),
    ]);
    return { a: resultA, b: resultB };
  }

  beforeAll(async () => {
    redis = await startRedis();
    a = await startTestServer(redis.env);
    b = await startTestServer(redis.env, a.databaseUrl);
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.closeQuietly()));
    await b?.stop().catch(() => undefined);
    await a?.close().catch(() => undefined);
    await redis?.close();
  });

  it('answers getLiveSession the same on A and B through add and remove on A', async () => {
    const c = uniqueId('same-answer');
    const holder = await socketTo(a!);
    expect(await liveOnBoth(c)).toEqual({ a: false, b: false });

    expect(await holder.call('addLiveSession', { connectionId: c, sessionId: 's-1' })).toBe(true);
    expect(await liveOnBoth(c)).toEqual({ a: true, b: true });

    expect(await holder.call('removeLiveSession', { connectionId: c })).toBe(true);
    expect(await liveOnBoth(c)).toEqual({ a: false, b: false });
  });

  it('hands the session over from A to B; reclaim is fenced by sessionId fleet-wide', async () => {
    const c = uniqueId('takeover');
    const holderA = await socketTo(a!);
    const holderB = await socketTo(b!);
    const senderA = await socketTo(a!);
    const senderB = await socketTo(b!);

    expect(await holderA.call('addLiveSession', { connectionId: c, sessionId: 's-a' })).toBe(true);
    expect(await holderB.call('addLiveSession', { connectionId: c, sessionId: 's-b' })).toBe(true);
    expect(await liveOnBoth(c)).toEqual({ a: true, b: true });

    // Added through both instances: every one goes to B's socket, none to A's.
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await addMessage(i % 2 === 0 ? senderA : senderB, c, `takeover-${i}`));
    await holderB.waitFor(
      () => ids.every((id) => holderB.notifiedIds(c).includes(id)),
      DELIVERY_MS,
      'the 5 messages notified to the new holder on B',
    );
    await sleep(QUIET_MS);
    expect(holderA.notifiedIds(c)).toEqual([]);
    expect([...holderB.notifiedIds(c)].sort()).toEqual([...ids].sort());

    // A reclaim of the former session is refused and changes nothing: B still receives.
    expect(await holderA.call('addLiveSession', { connectionId: c, sessionId: 's-a', reclaim: true })).toBe(false);
    expect(await liveOnBoth(c)).toEqual({ a: true, b: true });
    const afterRefusal = await addMessage(senderA, c, 'after-refused-reclaim');
    await holderB.waitFor(
      () => holderB.notifiedIds(c).includes(afterRefusal),
      DELIVERY_MS,
      'the message after the refused reclaim, notified to B',
    );
    await sleep(QUIET_MS);
    expect(holderA.notifiedIds(c)).toEqual([]);

    // A reclaim of the current session id from a new socket on A succeeds and makes that socket the holder.
    const reclaimer = await socketTo(a!);
    expect(await reclaimer.call('addLiveSession', { connectionId: c, sessionId: 's-b', reclaim: true })).toBe(true);
    expect(await liveOnBoth(c)).toEqual({ a: true, b: true });
    const afterReclaim = await addMessage(senderB, c, 'after-reclaim');
    await reclaimer.waitFor(
      () => reclaimer.notifiedIds(c).includes(afterReclaim),
      DELIVERY_MS,
      'the message after the reclaim, notified to the new socket on A',
    );
    await sleep(QUIET_MS);
    expect(holderB.notifiedIds(c)).not.toContain(afterReclaim);
    expect(holderA.notifiedIds(c)).toEqual([]);
  });

  it('removes a session held on A from B only with the matching sessionId', async () => {
    const c = uniqueId('remote-remove');
    const holderA = await socketTo(a!);
    const senderA = await socketTo(a!);
    const remover = await socketTo(b!);

    expect(await holderA.call('addLiveSession', { connectionId: c, sessionId: 's1' })).toBe(true);
    // Control: the session on A is really live across the fleet (so the negative check below means something).
    const before = await addMessage(remover, c, 'before-removal');
    await holderA.waitFor(
      () => holderA.notifiedIds(c).includes(before),
      DELIVERY_MS,
      'the message added on B before the removal, notified to A',
    );

    expect(await remover.call('removeLiveSession', { connectionId: c, sessionId: 'other' })).toBe(false);
    expect(await liveOnBoth(c)).toEqual({ a: true, b: true });

    expect(await remover.call('removeLiveSession', { connectionId: c, sessionId: 's1' })).toBe(true);
    expect(await liveOnBoth(c)).toEqual({ a: false, b: false });

    const viaB = await addMessage(remover, c, 'after-removal-via-b');
    const viaA = await addMessage(senderA, c, 'after-removal-via-a');
    await sleep(QUIET_MS);
    expect(holderA.notifiedIds(c)).toEqual([before]);
    const taken = (await takeAll(remover, c)).map((message) => message.id);
    expect(taken).toEqual(expect.arrayContaining([viaB, viaA]));
    expect(new Set(taken).size).toBe(taken.length);
  });
});

describe('fleet-wide live sessions after kill -9 of the holding instance (single Redis node)', () => {
  const LEASE_MS = 1_500;
  const WITHIN_MS = 6_000;
  let redis: { url: string; close: () => Promise<void> } | undefined;
  let database: { url: string; drop: () => Promise<void> } | undefined;
  let a: ServerProcess | undefined;
  let b: TestServer | undefined;
  const clients: JsonRpcWsClient[] = [];

  beforeAll(async () => {
    redis = await startRedisSingle();
    database = await createTestDatabase();
    const env = { REDIS_URL: redis.url, SESSION_LEASE_MS: String(LEASE_MS) };
    // Both at once: the child's ts-node start-up dominates, and both migrate the same database safely.
    [a, b] = await Promise.all([
      ServerProcess.start({ env: { ...env, DATABASE_URL: database.url, LOG_LEVEL: 'warn' } }),
      startTestServer(env, database.url),
    ]);
  });

  afterAll(async () => {
    await Promise.all(clients.map((client) => client.closeQuietly()));
    await ServerProcess.stopAll();
    await b?.stop().catch(() => undefined);
    await database?.drop().catch(() => undefined);
    await redis?.close();
  }, 30_000);

  it(`forgets the dead instance's sessions and returns its sending messages to pending within ${WITHIN_MS} ms (lease ${LEASE_MS} ms)`, async () => {
    const [c1, c2, c3] = ['crash-1', 'crash-2', 'crash-3'].map(uniqueId);
    const holder = await JsonRpcWsClient.connect(a!.wsUrl);
    const onB = await JsonRpcWsClient.connect(b!.wsUrl);
    clients.push(holder, onB);
    // A killed server resets the socket: keep the client's error from becoming an unhandled 'error' event.
    holder.socket.on('error', () => undefined);

    for (const [i, c] of [c1, c2, c3].entries()) {
      expect(await holder.call('addLiveSession', { connectionId: c, sessionId: `crash-s${i + 1}` })).toBe(true);
    }
    for (const c of [c1, c2, c3]) expect(await onB.call('getLiveSession', { connectionId: c })).toBe(true);

    const messageId = await addMessage(onB, c1, 'crash');
    await holder.waitFor(
      () => holder.notifiedIds(c1).includes(messageId),
      DELIVERY_MS,
      'the message added on B, notified to the holder on A',
    );
    expect(await onB.call('getAvailableMessageCount', { connectionId: c1 })).toBe(0); // it is `sending`

    const killedAt = Date.now();
    a!.kill('SIGKILL');
    expect(await a!.waitForExit(5_000)).toEqual({ code: null, signal: 'SIGKILL' });

    let sessionsGoneAfter: number | undefined;
    let takeableAfter: number | undefined;
    let lastSessions: boolean[] = [];
    let taken: Queued[] = [];
    const deadline = killedAt + WITHIN_MS;
    while ((sessionsGoneAfter === undefined || takeableAfter === undefined) && Date.now() < deadline) {
      if (sessionsGoneAfter === undefined) {
        lastSessions = await Promise.all([c1, c2, c3].map((c) => onB.call<boolean>('getLiveSession', { connectionId: c })));
        if (lastSessions.every((live) => live === false)) sessionsGoneAfter = Date.now() - killedAt;
      }
      if (takeableAfter === undefined) {
        taken = await onB.call<Queued[]>('takeFromQueue', { connectionId: c1 });
        if (taken.length > 0) takeableAfter = Date.now() - killedAt;
      }
      if (sessionsGoneAfter === undefined || takeableAfter === undefined) await sleep(50);
    }

    console.log(
      `kill -9 of the holding instance (SESSION_LEASE_MS=${LEASE_MS}): sessions gone on B after ${sessionsGoneAfter ?? 'never'} ms, ` +
        `its sending message takeable on B after ${takeableAfter ?? 'never'} ms`,
    );
    if (sessionsGoneAfter === undefined || takeableAfter === undefined) {
      throw new Error(
        `within ${WITHIN_MS} ms of kill -9: getLiveSession on B for c1..c3 = ${JSON.stringify(lastSessions)}, ` +
          `takeFromQueue {c1} on B = ${JSON.stringify(taken)}, getAvailableMessageCount {c1} on B = ` +
          `${JSON.stringify(await onB.call('getAvailableMessageCount', { connectionId: c1 }))}\nA's output:\n${tail(a!.output())}`,
      );
    }
    expect(taken.map((message) => message.id)).toEqual([messageId]);
    expect(taken[0].encryptedMessage).toEqual(payloadFor('crash'));
  });
});
