import { randomBytes } from 'node:crypto';
import { FcmAppFactory } from '../../apps/server/src/push/fcm-app.factory';
import { tokenHash } from '../../apps/server/src/push/known-push-token.types';
import { FakeFcmServer, fakeServiceAccountFiles, JsonRpcWsClient, metricValue, sql, waitForMetric } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * Push notifications through the real firebase-admin SDK (issue 4), against a local fake of the FCM HTTP v1 API on
 * loopback with TLS checks on. The only seam is FcmAppFactory: the SDK app gets a static access token and an agent
 * that connects to the fake; everything else (decision, coalescing, retries, dead tokens, token memory in
 * PostgreSQL) is the server's own path.
 */

jest.setTimeout(60_000);

/**
 * Assertions "inside the window" run on a server with a long window, so that a loaded machine cannot let the window
 * end before the assertion; assertions "after the window" run on a second server with a short one.
 */
const WINDOW_MS = 3_000;
const SHORT_WINDOW_MS = 800;
/** The server checks for a trailing push this long after a window's end. */
const TRAILING_MARGIN_MS = 250;
/** How long a negative check waits for a request that must not come. */
const QUIET_MS = 400;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const uniqueId = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;
const payload = { protected: 'eyJ0eXAiOiJKV00ifQ', ciphertext: 'secret-ciphertext', tag: 't', iv: 'iv' };

describe('push notifications through FCM (firebase-admin against a fake FCM)', () => {
  let fake: FakeFcmServer;
  let accounts: ReturnType<typeof fakeServiceAccountFiles>;
  let server: TestServer;
  let shortServer: TestServer;
  let mediator: JsonRpcWsClient;
  let shortMediator: JsonRpcWsClient;
  let device: JsonRpcWsClient;

  beforeAll(async () => {
    fake = await FakeFcmServer.start();
    accounts = fakeServiceAccountFiles(['project-main', 'project-other']);
    jest
      .spyOn(FcmAppFactory.prototype, 'appOptions')
      .mockImplementation((appId) => fake.appOptions(appId === 'default' ? 'project-main' : `project-${appId}`));
    const env = {
      FIREBASE_CREDENTIALS: `default=${accounts.files['project-main']},other=${accounts.files['project-other']}`,
      PUSH_TITLE: 'Wake up',
      PUSH_BODY: 'A message is waiting',
      PUSH_RETRY_BASE_MS: '100',
      PUSH_MAX_ATTEMPTS: '3',
      PUSH_TIMEOUT_MS: '5000',
    };
    server = await startTestServer({ ...env, PUSH_COALESCE_WINDOW_MS: String(WINDOW_MS) });
    shortServer = await startTestServer({ ...env, PUSH_COALESCE_WINDOW_MS: String(SHORT_WINDOW_MS) });
    mediator = await JsonRpcWsClient.connect(server.wsUrl);
    shortMediator = await JsonRpcWsClient.connect(shortServer.wsUrl);
    device = await JsonRpcWsClient.connect(server.wsUrl);
  });

  afterAll(async () => {
    await mediator?.closeQuietly();
    await shortMediator?.closeQuietly();
    await device?.closeQuietly();
    await server?.close();
    await shortServer?.close();
    await fake?.close();
    accounts?.remove();
    jest.restoreAllMocks();
  });

  const add = async (
    connectionId: string,
    token?: string,
    extra: Record<string, unknown> = {},
    through: JsonRpcWsClient = mediator,
  ): Promise<string> => {
    const { messageId } = await through.call<{ messageId: string }>('addMessage', {
      connectionId,
      recipientDids: ['did:example:bob'],
      payload,
      ...(token !== undefined ? { pushNotificationToken: { type: 'fcm', token, ...extra } } : {}),
    });
    return messageId;
  };
  const takeAll = (connectionId: string, through: JsonRpcWsClient = mediator) =>
    through.call<unknown[]>('takeFromQueue', { connectionId, deleteMessages: true });
  /** On the short-window server, for what happens after a window. */
  const addShort = (connectionId: string, token?: string) => add(connectionId, token, {}, shortMediator);
  const afterShortWindow = () => sleep(SHORT_WINDOW_MS + TRAILING_MARGIN_MS + 300);

  it('wakes an offline connection with exactly one FCM request carrying ids only', async () => {
    const connectionId = uniqueId('offline');
    const token = uniqueId('token');
    const messageId = await add(connectionId, token);
    const [request] = await fake.waitFor(1, (r) => r.body.message.token === token);
    await sleep(QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(1);
    expect(request.project).toBe('project-main');
    expect(request.authorization).toBe('Bearer fake-token-project-main');
    expect(request.body.message).toEqual({
      token,
      data: { connectionId, messageId },
      notification: { title: 'Wake up', body: 'A message is waiting' },
      android: { priority: 'high' },
    });
    expect(JSON.stringify(request.body)).not.toContain('secret-ciphertext');
    expect(await metricValue(server.httpUrl, 'mpr_push_sent_total{transport="fcm"}')).toBeGreaterThanOrEqual(1);
  });

  it('sends a token with an appId through that Firebase project', async () => {
    const token = uniqueId('token-other');
    await add(uniqueId('other-app'), token, { appId: 'other' });
    const [request] = await fake.waitFor(1, (r) => r.body.message.token === token);
    expect(request.project).toBe('project-other');
  });

  it('remembers the token: a later message without one still wakes the device', async () => {
    const connectionId = uniqueId('remembered');
    const token = uniqueId('token');
    await addShort(connectionId, token);
    await fake.waitFor(1, (r) => r.body.message.token === token);
    await takeAll(connectionId, shortMediator);
    await afterShortWindow();
    const second = await addShort(connectionId);
    const requests = await fake.waitFor(2, (r) => r.body.message.token === token);
    expect(requests[1].body.message.data).toEqual({ connectionId, messageId: second });
  });

  it('sends nothing while a live session holds the connection', async () => {
    const connectionId = uniqueId('live');
    const token = uniqueId('token');
    await device.call('addLiveSession', { connectionId, sessionId: 's1' });
    await add(connectionId, token);
    await device.waitFor(() => device.notifiedIds(connectionId).length === 1);
    await sleep(QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(0);
    await device.call('removeLiveSession', { connectionId });
  });

  it('wakes the device when its session ends with messages back to pending', async () => {
    const connectionId = uniqueId('ended');
    const token = uniqueId('token');
    const holder = await JsonRpcWsClient.connect(server.wsUrl);
    await holder.call('addLiveSession', { connectionId, sessionId: 's1' });
    const messageId = await add(connectionId, token);
    await holder.waitFor(() => holder.notifiedIds(connectionId).length === 1);
    expect(fake.requestsFor(token)).toHaveLength(0);
    // Notified but never acknowledged: the socket goes away, the message is pending again, nobody holds the session.
    await holder.closeQuietly();
    const [request] = await fake.waitFor(1, (r) => r.body.message.token === token);
    expect(request.body.message.data).toEqual({ connectionId, messageId });
  });

  it('coalesces a burst of 100 messages into one push; the device fetches, nothing trails', async () => {
    const connectionId = uniqueId('burst');
    const token = uniqueId('token');
    const coalescedBefore = await metricValue(server.httpUrl, 'mpr_push_coalesced_total');
    await Promise.all(Array.from({ length: 100 }, () => add(connectionId, token)));
    await fake.waitFor(1, (r) => r.body.message.token === token);
    await takeAll(connectionId);
    await sleep(WINDOW_MS + QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(1);
    // Adds are group-committed: one push decision per connection per commit, every one after the first coalesced.
    expect(await metricValue(server.httpUrl, 'mpr_push_coalesced_total')).toBeGreaterThan(coalescedBefore);
  });

  it('sends a trailing push for a message that arrived after the device fetched inside the window', async () => {
    const connectionId = uniqueId('trailing');
    const token = uniqueId('token');
    await add(connectionId, token);
    const [first] = await fake.waitFor(1, (r) => r.body.message.token === token);
    await takeAll(connectionId);
    const late = await add(connectionId, token);
    await sleep(QUIET_MS / 2);
    expect(fake.requestsFor(token)).toHaveLength(1); // inside the window: coalesced
    const [, trailing] = await fake.waitFor(2, (r) => r.body.message.token === token, WINDOW_MS + 10_000);
    expect(trailing.body.message.data).toEqual({ connectionId, messageId: late });
    expect(trailing.at - first.at).toBeGreaterThanOrEqual(WINDOW_MS - 50);
  });

  it('sends the trailing push for any connection of the device still waiting, not only the one that opened the window', async () => {
    // One device (one token) serves two connections: the first opens the window, the second is folded into it.
    const opener = uniqueId('opener');
    const other = uniqueId('other');
    const token = uniqueId('token');
    await add(opener, token);
    await fake.waitFor(1, (r) => r.body.message.token === token);
    const waiting = await add(other, token);
    await sleep(QUIET_MS / 2);
    expect(fake.requestsFor(token)).toHaveLength(1);
    // The device fetches for the opener only: its queue is empty, the other connection's message still waits.
    await takeAll(opener);
    const [, trailing] = await fake.waitFor(2, (r) => r.body.message.token === token, WINDOW_MS + 10_000);
    expect(trailing.body.message.data).toEqual({ connectionId: other, messageId: waiting });
    await sleep(QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(2);
  });

  it('after a window ends, pushes the next message at once instead of folding it', async () => {
    const connectionId = uniqueId('after-window');
    const token = uniqueId('token');
    await addShort(connectionId, token);
    await fake.waitFor(1, (r) => r.body.message.token === token);
    await takeAll(connectionId, shortMediator);
    await afterShortWindow();
    expect(fake.requestsFor(token)).toHaveLength(1); // fetched: nothing trails
    const coalescedBefore = await metricValue(shortServer.httpUrl, 'mpr_push_coalesced_total');
    const next = await addShort(connectionId, token);
    const [, second] = await fake.waitFor(2, (r) => r.body.message.token === token);
    expect(second.body.message.data).toEqual({ connectionId, messageId: next });
    expect(await metricValue(shortServer.httpUrl, 'mpr_push_coalesced_total')).toBe(coalescedBefore);
  });

  it('delivers after FCM answers 503 then 200', async () => {
    const token = uniqueId('token');
    fake.answerNext({ status: 503, errorCode: 'UNAVAILABLE' });
    const sentBefore = await metricValue(server.httpUrl, 'mpr_push_sent_total{transport="fcm"}');
    await add(uniqueId('unavailable'), token);
    await fake.waitFor(2, (r) => r.body.message.token === token);
    await waitForMetric(server.httpUrl, 'mpr_push_sent_total{transport="fcm"}', sentBefore + 1);
    await sleep(QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(2);
  });

  it('retries a 429 with backoff, then delivers', async () => {
    const token = uniqueId('token');
    fake.answerNext({ status: 429, errorCode: 'QUOTA_EXCEEDED' }, { status: 429, errorCode: 'QUOTA_EXCEEDED' });
    const retriedBefore = await metricValue(server.httpUrl, 'mpr_push_retried_total{transport="fcm"}');
    await add(uniqueId('throttled'), token);
    const requests = await fake.waitFor(3, (r) => r.body.message.token === token);
    expect(await metricValue(server.httpUrl, 'mpr_push_retried_total{transport="fcm"}')).toBe(retriedBefore + 2);
    // Full jitter: each wait is somewhere in [0, 100·2^(n-1)] ms, so the three requests span at most ~300 ms of backoff.
    expect(requests[2].at - requests[0].at).toBeLessThan(2_000);
    await sleep(QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(3);
  });

  it('gives up after PUSH_MAX_ATTEMPTS on a 5xx that persists, counting the failure', async () => {
    const token = uniqueId('token');
    // 500 is not retried by the SDK itself: each of our three attempts is one request.
    fake.answerNext(...Array.from({ length: 3 }, () => ({ status: 500, errorCode: 'INTERNAL' as const })));
    const failedBefore = await metricValue(server.httpUrl, 'mpr_push_failed_total{transport="fcm",reason="internal-error"}');
    await add(uniqueId('failing'), token);
    await fake.waitFor(3, (r) => r.body.message.token === token);
    await waitForMetric(server.httpUrl, 'mpr_push_failed_total{transport="fcm",reason="internal-error"}', failedBefore + 1);
    await sleep(QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(3);
  });

  it('forgets a token FCM declares UNREGISTERED, without retrying, and does not revive it when sent again', async () => {
    const connectionId = uniqueId('dead');
    const token = uniqueId('token');
    fake.answerNext({ status: 404, errorCode: 'UNREGISTERED' });
    await addShort(connectionId, token);
    await fake.waitFor(1, (r) => r.body.message.token === token);
    await waitForMetric(shortServer.httpUrl, 'mpr_push_failed_total{transport="fcm",reason="dead-token"}', 1);
    await sleep(QUIET_MS);
    expect(fake.requestsFor(token)).toHaveLength(1); // not retried
    expect(await sql(shortServer.databaseUrl, 'SELECT 1 FROM push_token WHERE connection_id = $1', [connectionId])).toHaveLength(0);
    expect(await sql(shortServer.databaseUrl, 'SELECT 1 FROM dead_push_token WHERE token_hash = $1', [tokenHash(token)])).toHaveLength(1);
    // Past the window, so only the dead token can explain silence.
    await afterShortWindow();
    await addShort(connectionId, token);
    await addShort(connectionId);
    await afterShortWindow();
    expect(fake.requestsFor(token)).toHaveLength(1);
    // A new token from the device is remembered and used.
    const fresh = uniqueId('token');
    await addShort(connectionId, fresh);
    await fake.waitFor(1, (r) => r.body.message.token === fresh);
    await takeAll(connectionId, shortMediator);
    // A message still carrying the dead token wakes the device through the connection's remembered live token.
    await afterShortWindow();
    const stale = await addShort(connectionId, token);
    const [, fallback] = await fake.waitFor(2, (r) => r.body.message.token === fresh);
    expect(fallback.body.message.data).toEqual({ connectionId, messageId: stale });
    expect(fake.requestsFor(token)).toHaveLength(1);
  });

  it('does not count a dead mark older than 30 days: the token is accepted again', async () => {
    const connectionId = uniqueId('lapsed');
    const token = uniqueId('token');
    await sql(shortServer.databaseUrl, `INSERT INTO dead_push_token (token_hash, declared_at) VALUES ($1, now() - interval '31 days')`, [
      tokenHash(token),
    ]);
    const messageId = await addShort(connectionId, token);
    const [request] = await fake.waitFor(1, (r) => r.body.message.token === token);
    expect(request.body.message.data).toEqual({ connectionId, messageId });
  });
});
