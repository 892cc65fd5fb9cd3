import { randomBytes } from 'node:crypto';
import { ApnsProviderFactory } from '../../apps/server/src/push/apns-provider.factory';
import { tokenHash } from '../../apps/server/src/push/known-push-token.types';
import { APNS_PRODUCTION_HOST, FakeApnsServer, JsonRpcWsClient, metricValue, sql, waitForMetric } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * Push notifications through APNs directly (issue 4): the real `@parse/node-apn` provider, signing ES256 provider
 * tokens with a .p8 key, against a local fake APNs over HTTP/2 with TLS checks on. The only seam is
 * ApnsProviderFactory, which gets a connection to loopback and the fake's certificate; the key, the token, the
 * request and everything the server decides are the real path.
 */

jest.setTimeout(60_000);

const WINDOW_MS = 800;
/** Past a window and its trailing check. */
const AFTER_WINDOW_MS = WINDOW_MS + 250 + 300;
/** How long a negative check waits for a request that must not come. */
const QUIET_MS = 400;
const KEY_ID = 'KEY1234567';
const TEAM_ID = 'TEAM123456';
const TOPIC = 'org.example.wallet';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const uniqueId = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;
/** APNs device tokens are 32 bytes in hex. */
const deviceToken = () => randomBytes(32).toString('hex');
const payload = { protected: 'eyJ0eXAiOiJKV00ifQ', ciphertext: 'secret-ciphertext', tag: 't', iv: 'iv' };

describe('push notifications through APNs (@parse/node-apn against a fake APNs)', () => {
  let sandbox: FakeApnsServer;
  let production: FakeApnsServer;
  let server: TestServer;
  let dataOnlyServer: TestServer;
  let mediator: JsonRpcWsClient;
  let dataOnlyMediator: JsonRpcWsClient;

  beforeAll(async () => {
    sandbox = await FakeApnsServer.start();
    production = await FakeApnsServer.start(APNS_PRODUCTION_HOST);
    // Each server reaches the fake whose signing key it was configured with.
    const real = ApnsProviderFactory.prototype.providerOptions;
    jest.spyOn(ApnsProviderFactory.prototype, 'providerOptions').mockImplementation(function (this: ApnsProviderFactory, apns, timeoutMs) {
      return (apns.production ? production : sandbox).providerOptions(real.call(this, apns, timeoutMs));
    });
    const env = {
      APNS_KEY_ID: KEY_ID,
      APNS_TEAM_ID: TEAM_ID,
      APNS_TOPIC: TOPIC,
      PUSH_TITLE: 'Wake up',
      PUSH_BODY: 'A message is waiting',
      PUSH_RETRY_BASE_MS: '100',
      PUSH_MAX_ATTEMPTS: '3',
      PUSH_TIMEOUT_MS: '5000',
      PUSH_COALESCE_WINDOW_MS: String(WINDOW_MS),
    };
    server = await startTestServer({ ...env, APNS_KEY_FILE: sandbox.keyFile, APNS_PRODUCTION: 'false' });
    dataOnlyServer = await startTestServer({ ...env, APNS_KEY_FILE: production.keyFile, APNS_PRODUCTION: 'true', PUSH_DATA_ONLY: 'true' });
    mediator = await JsonRpcWsClient.connect(server.wsUrl);
    dataOnlyMediator = await JsonRpcWsClient.connect(dataOnlyServer.wsUrl);
  });

  afterAll(async () => {
    await mediator?.closeQuietly();
    await dataOnlyMediator?.closeQuietly();
    await server?.close();
    await dataOnlyServer?.close();
    await sandbox?.close();
    await production?.close();
    jest.restoreAllMocks();
  });

  const add = async (connectionId: string, token?: string, through: JsonRpcWsClient = mediator): Promise<string> => {
    const { messageId } = await through.call<{ messageId: string }>('addMessage', {
      connectionId,
      recipientDids: ['did:example:bob'],
      payload,
      ...(token !== undefined ? { pushNotificationToken: { type: 'apns', token } } : {}),
    });
    return messageId;
  };

  it('wakes an offline connection with one alert push: signed provider token, topic, ids only', async () => {
    const connectionId = uniqueId('offline');
    const token = deviceToken();
    const messageId = await add(connectionId, token);
    const [request] = await sandbox.waitFor(token, 1);
    await sleep(QUIET_MS);
    expect(sandbox.requestsFor(token)).toHaveLength(1);
    expect(request.authority).toBe('api.sandbox.push.apple.com');
    expect(request.jwt).toMatchObject({ alg: 'ES256', kid: KEY_ID, iss: TEAM_ID, signatureValid: true });
    expect(Math.abs(request.jwt.iat - Date.now() / 1000)).toBeLessThan(120);
    expect(request.headers).toMatchObject({ topic: TOPIC, pushType: 'alert', priority: '10' });
    // Kept by APNs for a day while the device is unreachable.
    expect(Number(request.headers.expiration) - Date.now() / 1000).toBeGreaterThan(23 * 3600);
    expect(request.body).toEqual({ aps: { alert: { title: 'Wake up', body: 'A message is waiting' } }, connectionId, messageId });
    expect(JSON.stringify(request.body)).not.toContain('secret-ciphertext');
    expect(await metricValue(server.httpUrl, 'mpr_push_sent_total{transport="apns"}')).toBeGreaterThanOrEqual(1);
  });

  it('sends a background push, priority 5 and nothing visible, to the production host in data-only mode', async () => {
    const connectionId = uniqueId('data-only');
    const token = deviceToken();
    const messageId = await add(connectionId, token, dataOnlyMediator);
    const [request] = await production.waitFor(token, 1);
    expect(request.authority).toBe('api.push.apple.com');
    expect(request.jwt.signatureValid).toBe(true);
    expect(request.headers).toMatchObject({ topic: TOPIC, pushType: 'background', priority: '5' });
    expect(request.body).toEqual({ aps: { 'content-available': 1 }, connectionId, messageId });
  });

  it('sends nothing while a live session holds the connection', async () => {
    const connectionId = uniqueId('live');
    const token = deviceToken();
    const device = await JsonRpcWsClient.connect(server.wsUrl);
    try {
      await device.call('addLiveSession', { connectionId, sessionId: 's1' });
      const messageId = await add(connectionId, token);
      await device.waitFor(() => device.notifiedIds(connectionId).length === 1);
      await sleep(QUIET_MS);
      expect(sandbox.requestsFor(token)).toHaveLength(0);
      // Acknowledged: closing the socket then leaves nothing pending that would rightly wake the device.
      await device.call('removeMessages', { connectionId, messageIds: [messageId] });
    } finally {
      await device.closeQuietly();
    }
  });

  it('delivers after APNs answers 503 then 200, the retry being the server’s own', async () => {
    const token = deviceToken();
    sandbox.answerNext({ status: 503, reason: 'ServiceUnavailable' });
    const retriedBefore = await metricValue(server.httpUrl, 'mpr_push_retried_total{transport="apns"}');
    const sentBefore = await metricValue(server.httpUrl, 'mpr_push_sent_total{transport="apns"}');
    await add(uniqueId('unavailable'), token);
    await sandbox.waitFor(token, 2);
    await waitForMetric(server.httpUrl, 'mpr_push_sent_total{transport="apns"}', sentBefore + 1);
    await sleep(QUIET_MS);
    expect(sandbox.requestsFor(token)).toHaveLength(2);
    expect(await metricValue(server.httpUrl, 'mpr_push_retried_total{transport="apns"}')).toBe(retriedBefore + 1);
  });

  it('retries a 429 with the server’s backoff, not at once inside the library', async () => {
    const token = deviceToken();
    sandbox.answerNext({ status: 429, reason: 'TooManyRequests' }, { status: 429, reason: 'TooManyRequests' });
    const retriedBefore = await metricValue(server.httpUrl, 'mpr_push_retried_total{transport="apns"}');
    await add(uniqueId('throttled'), token);
    await sandbox.waitFor(token, 3);
    expect(await metricValue(server.httpUrl, 'mpr_push_retried_total{transport="apns"}')).toBe(retriedBefore + 2);
    await sleep(QUIET_MS);
    expect(sandbox.requestsFor(token)).toHaveLength(3);
  });

  it('forgets a token APNs answers 410 Unregistered for, without retrying, and does not revive it when sent again', async () => {
    const connectionId = uniqueId('dead');
    const token = deviceToken();
    const deadBefore = await metricValue(server.httpUrl, 'mpr_push_failed_total{transport="apns",reason="dead-token"}');
    sandbox.answerNext({ status: 410, reason: 'Unregistered' });
    await add(connectionId, token);
    await sandbox.waitFor(token, 1);
    await waitForMetric(server.httpUrl, 'mpr_push_failed_total{transport="apns",reason="dead-token"}', deadBefore + 1);
    await sleep(QUIET_MS);
    expect(sandbox.requestsFor(token)).toHaveLength(1);
    expect(await sql(server.databaseUrl, 'SELECT 1 FROM push_token WHERE connection_id = $1', [connectionId])).toHaveLength(0);
    expect(await sql(server.databaseUrl, 'SELECT 1 FROM dead_push_token WHERE token_hash = $1', [tokenHash(token)])).toHaveLength(1);
    await sleep(AFTER_WINDOW_MS);
    await add(connectionId, token);
    await sleep(AFTER_WINDOW_MS);
    expect(sandbox.requestsFor(token)).toHaveLength(1);
    // A new token from the device is remembered and used.
    const fresh = deviceToken();
    await add(connectionId, fresh);
    await sandbox.waitFor(fresh, 1);
  });

  it('does not declare a token dead when APNs blames the topic, so the next window pushes it again', async () => {
    const connectionId = uniqueId('wrong-topic');
    const token = deviceToken();
    sandbox.answerNext({ status: 400, reason: 'DeviceTokenNotForTopic' });
    await add(connectionId, token);
    await sandbox.waitFor(token, 1);
    await waitForMetric(server.httpUrl, 'mpr_push_failed_total{transport="apns",reason="DeviceTokenNotForTopic"}', 1);
    expect(await sql(server.databaseUrl, 'SELECT 1 FROM dead_push_token WHERE token_hash = $1', [tokenHash(token)])).toHaveLength(0);
    await sleep(AFTER_WINDOW_MS);
    await add(connectionId, token);
    await sandbox.waitFor(token, 2);
  });
});
