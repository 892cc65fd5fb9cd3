import {
  createTestDatabase,
  FakeWebhookServer,
  JsonRpcWsClient,
  metricValue,
  RedisSingle,
  RpcCallError,
  startRedisSingle,
  TcpProxy,
} from '@didcomm-mpr/test-kit';
import { sleep, waitUntil } from '../support/client-waits';
import { startTestServer, TestServer } from '../support/test-server';

jest.setTimeout(120_000);

const DEADLINE_MS = 1_000;
const LEASE_MS = 3_000;
/** A call "within the deadline": the deadline itself plus generous room for a busy two-core machine. */
const WITHIN_DEADLINE_MS = DEADLINE_MS + 2_000;

/**
 * A stalled network between one instance and Redis: the proxy keeps the sockets open but carries nothing (the bytes
 * wait, as TCP does in a partition), then heals. Instance A reaches Redis through the proxy, instance B directly;
 * both share the database.
 */
describe('Redis behind a stalled network', () => {
  let redis: RedisSingle;
  let proxy: TcpProxy;
  let webhook: FakeWebhookServer;
  let a: TestServer;
  let b: TestServer;
  let dropDatabase: (() => Promise<void>) | undefined;
  const logsA: string[] = [];
  const clients: JsonRpcWsClient[] = [];

  const env = { REDIS_COMMAND_TIMEOUT_MS: String(DEADLINE_MS), SESSION_LEASE_MS: String(LEASE_MS), PUSH_COALESCE_WINDOW_MS: '60000' };
  const health = async (server: TestServer) => {
    const response = await fetch(`${server.httpUrl}/health`);
    return { http: response.status, body: (await response.json()) as { status: string; checks: { pubsub: { status: string } } } };
  };
  const connect = async (server: TestServer) => {
    const client = await JsonRpcWsClient.connect(server.wsUrl);
    clients.push(client);
    return client;
  };
  const timed = async (work: Promise<unknown>) => {
    const started = Date.now();
    const error = await work.then(
      () => undefined,
      (failure: RpcCallError) => failure.error,
    );
    return { error, ms: Date.now() - started };
  };
  const add = async (client: JsonRpcWsClient, connectionId: string, n: number) =>
    (await client.call<{ messageId: string }>('addMessage', { connectionId, recipientDids: ['did:example:x'], payload: { n } })).messageId;

  beforeAll(async () => {
    redis = await startRedisSingle();
    proxy = await TcpProxy.start('127.0.0.1', Number(new URL(redis.url).port));
    webhook = await FakeWebhookServer.start();
    const database = await createTestDatabase();
    dropDatabase = database.drop;
    // B first: Nest's logger is one per process, the last server's; A's lines are the ones read here.
    b = await startTestServer({ ...env, REDIS_URL: redis.url, INSTANCE_ID: 'stall-b' }, database.url);
    a = await startTestServer(
      { ...env, REDIS_URL: `redis://127.0.0.1:${proxy.port}`, INSTANCE_ID: 'stall-a', PUSH_WEBHOOK_URL: webhook.url },
      database.url,
      { logs: logsA },
    );
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.closeQuietly()));
    await proxy?.restore();
    await b?.stop();
    await a?.stop();
    await dropDatabase?.();
    await proxy?.close();
    await webhook?.close();
    await redis?.close();
  });

  it('fails session calls within the deadline, keeps adding, fences its sessions when the lease lapses, and resumes after healing', async () => {
    const holder = await connect(a);
    const sender = await connect(a);
    const senderB = await connect(b);
    const pushHolder = await connect(a);
    expect(await holder.call('addLiveSession', { connectionId: 'held', sessionId: 's1' })).toBe(true);
    // A session with a message in flight (notified, not acknowledged): its end during the stall needs a push decision.
    expect(await pushHolder.call('addLiveSession', { connectionId: 'pushed', sessionId: 's1' })).toBe(true);
    const inFlight = await add(sender, 'pushed', 0);
    await pushHolder.waitFor(() => pushHolder.notifiedIds('pushed').includes(inFlight), 10_000, 'the message in flight');
    expect(await sender.call('getLiveSession', { connectionId: 'held' })).toBe(true);

    proxy.stall('hold');
    const stalledAt = Date.now();

    // Session calls: the retryable -32000, within the deadline (they used to wait for as long as the stall lasted).
    for (const [method, params] of [
      ['addLiveSession', { connectionId: 'new', sessionId: 's1' }],
      ['getLiveSession', { connectionId: 'held' }],
      ['removeLiveSession', { connectionId: 'other' }],
    ] as const) {
      const { error, ms } = await timed(sender.call(method, params));
      expect({ method, error }).toMatchObject({ method, error: { code: -32000, data: { retryable: true } } });
      expect(ms).toBeLessThan(WITHIN_DEADLINE_MS);
    }
    // Adds do not wait for Redis: they commit and answer. (Were they waiting for it, none would take less than the
    // deadline; the fastest is compared, so that one slow commit on a busy machine says nothing.)
    const addLatencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const started = Date.now();
      await add(sender, 'unheld', i);
      addLatencies.push(Date.now() - started);
    }
    expect(Math.min(...addLatencies)).toBeLessThan(DEADLINE_MS / 2);
    // /health: degraded, still 200 (PostgreSQL answers).
    await waitUntil('A reports degraded', async () => (await health(a)).body.status === 'degraded');
    expect(await health(a)).toMatchObject({ http: 200, body: { status: 'degraded', checks: { pubsub: { status: 'degraded' } } } });
    expect(await metricValue(a.httpUrl, 'mpr_redis_command_timeouts_total{connection="commands"}')).toBeGreaterThan(0);

    // Push decisions fall back as in an outage: the session with a message in flight ends, its message is pending
    // again, and the device is woken without coalescing and without knowing of sessions elsewhere.
    await pushHolder.close();
    const pushes = await webhook.waitFor('pushed', 1, 15_000);
    expect(pushes[0].body.messageId).toBe(inFlight);
    expect(await metricValue(a.httpUrl, 'mpr_push_fallback_total{kind="uncoalesced"}')).toBeGreaterThan(0);
    expect(await metricValue(a.httpUrl, 'mpr_push_fallback_total{kind="session-unknown"}')).toBeGreaterThan(0);

    // Fencing: A cannot renew its lease, so before it ends A stops delivering to the sessions it can no longer prove
    // it holds, and says so; B, which reaches Redis, sees the session gone with A's lease.
    await waitUntil(
      'A fences its session',
      async () => (await metricValue(a.httpUrl, 'mpr_live_sessions_fenced')) === 1,
      LEASE_MS + 10_000,
    );
    expect(Date.now() - stalledAt).toBeLessThan(LEASE_MS + 5_000);
    expect(logsA.some((line) => line.startsWith('error') && line.includes('Session lease not renewed in time'))).toBe(true);
    const whileFenced = await add(sender, 'held', 1);
    await sleep(1_500);
    expect(holder.notifiedIds('held')).not.toContain(whileFenced);
    await waitUntil(
      'B sees the session gone with the lease',
      async () => (await senderB.call<boolean>('getLiveSession', { connectionId: 'held' })) === false,
    );

    await proxy.restore();
    const healedAt = Date.now();
    await waitUntil('A is healthy again', async () => (await health(a)).body.status === 'ok', 20_000);
    await waitUntil(
      'A serves its confirmed session again',
      async () => (await metricValue(a.httpUrl, 'mpr_live_sessions_fenced')) === 0,
      20_000,
    );
    expect(logsA.some((line) => line.includes('Session lease renewed after a lapse: 1 sessions confirmed'))).toBe(true);
    console.log(`Redis stall: healthy and serving again ${Date.now() - healedAt} ms after the network healed`);

    // Everything resumes without a restart: the session is live fleet-wide again, live delivery from both instances.
    expect(await senderB.call('getLiveSession', { connectionId: 'held' })).toBe(true);
    const fromA = await add(sender, 'held', 2);
    const fromB = await add(senderB, 'held', 3);
    await holder.waitFor(
      () => holder.notifiedIds('held').includes(fromA) && holder.notifiedIds('held').includes(fromB),
      10_000,
      'live delivery after healing',
    );
    // What was added while fenced stayed pending: the next take finds it.
    const taken = (await holder.call<{ id: string }[]>('takeFromQueue', { connectionId: 'held' })).map((message) => message.id);
    expect(taken).toContain(whileFenced);
    expect(await sender.call('addLiveSession', { connectionId: 'new', sessionId: 's1' })).toBe(true);
    expect(await metricValue(a.httpUrl, 'mpr_redis_commands_in_flight{connection="commands"}')).toBeLessThan(10);
  });
});
