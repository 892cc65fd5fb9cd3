import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { bearer, FakeWebhookServer, JsonRpcWsClient, metricValue, testToken, writeTokensFile } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * The webhook transport (issue 4): every push decision is a JSON POST to PUSH_WEBHOOK_URL with the shared secret,
 * whether or not a token is known; 5xx is retried (honouring Retry-After), other 4xx are not.
 */

jest.setTimeout(60_000);

/** Long enough that "inside the window" assertions (coalescing) hold on a loaded machine. */
const WINDOW_MS = 3_000;
const QUIET_MS = 400;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const uniqueId = (label: string) => `${label}-${randomBytes(4).toString('hex')}`;

describe('push notifications through a webhook', () => {
  let hook: FakeWebhookServer;
  let server: TestServer;
  let mediator: JsonRpcWsClient;

  beforeAll(async () => {
    hook = await FakeWebhookServer.start();
    server = await startTestServer({
      PUSH_WEBHOOK_URL: hook.url,
      PUSH_WEBHOOK_SECRET: 'hook-secret',
      PUSH_COALESCE_WINDOW_MS: String(WINDOW_MS),
      PUSH_RETRY_BASE_MS: '50',
      PUSH_MAX_ATTEMPTS: '3',
    });
    mediator = await JsonRpcWsClient.connect(server.wsUrl);
  });

  afterAll(async () => {
    await mediator?.closeQuietly();
    await server?.close();
    await hook?.close();
  });

  const add = async (connectionId: string, pushNotificationToken?: Record<string, string>): Promise<string> => {
    const { messageId } = await mediator.call<{ messageId: string }>('addMessage', {
      connectionId,
      recipientDids: ['did:example:bob'],
      payload: { ciphertext: 'secret-ciphertext' },
      ...(pushNotificationToken ? { pushNotificationToken } : {}),
    });
    return messageId;
  };

  it('posts {tenant, connectionId, messageId, token, type} with the secret header', async () => {
    const connectionId = uniqueId('with-token');
    const messageId = await add(connectionId, { type: 'fcm', token: 'device-token-1' });
    const [request] = await hook.waitFor(connectionId, 1);
    expect(request.headers['x-webhook-secret']).toBe('hook-secret');
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.body).toEqual({ tenant: 'default', connectionId, messageId, token: 'device-token-1', type: 'fcm' });
    await sleep(QUIET_MS);
    expect(hook.requestsFor(connectionId)).toHaveLength(1);
  });

  it('posts without a token when none is known, and ignores a token of no use (no token string)', async () => {
    const connectionId = uniqueId('no-token');
    const messageId = await add(connectionId, { type: 'fcm' });
    const [request] = await hook.waitFor(connectionId, 1);
    expect(request.body).toEqual({ tenant: 'default', connectionId, messageId });
  });

  it('retries a 503 then delivers, waiting at least Retry-After', async () => {
    const connectionId = uniqueId('retry');
    hook.answerNext({ status: 503, headers: { 'retry-after': '1' } });
    const retriedBefore = await metricValue(server.httpUrl, 'mpr_push_retried_total{transport="webhook"}');
    await add(connectionId);
    const [first, second] = await hook.waitFor(connectionId, 2);
    expect(second.at - first.at).toBeGreaterThanOrEqual(950);
    expect(second.body).toEqual(first.body);
    expect(await metricValue(server.httpUrl, 'mpr_push_retried_total{transport="webhook"}')).toBe(retriedBefore + 1);
    await sleep(QUIET_MS);
    expect(hook.requestsFor(connectionId)).toHaveLength(2);
  });

  it('does not retry a 400, and counts the failure', async () => {
    const connectionId = uniqueId('rejected');
    hook.answerNext({ status: 400 });
    await add(connectionId);
    await hook.waitFor(connectionId, 1);
    await sleep(QUIET_MS);
    expect(hook.requestsFor(connectionId)).toHaveLength(1);
    expect(await metricValue(server.httpUrl, 'mpr_push_failed_total{transport="webhook",reason="400"}')).toBe(1);
  });

  it('coalesces per connection when no token is known', async () => {
    const connectionId = uniqueId('coalesce');
    await add(connectionId);
    await add(connectionId);
    await add(connectionId);
    await hook.waitFor(connectionId, 1);
    await sleep(QUIET_MS / 2);
    expect(hook.requestsFor(connectionId)).toHaveLength(1);
  });
});

describe('push at shutdown', () => {
  let hook: FakeWebhookServer;

  beforeAll(async () => {
    hook = await FakeWebhookServer.start();
  });

  afterAll(async () => {
    await hook?.close();
  });

  const startWith = (shutdownTimeoutMs: number) =>
    startTestServer({
      PUSH_WEBHOOK_URL: hook.url,
      PUSH_RETRY_BASE_MS: '50',
      PUSH_MAX_ATTEMPTS: '3',
      SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
    });

  const addThroughNewClient = async (server: TestServer, connectionId: string) => {
    const client = await JsonRpcWsClient.connect(server.wsUrl);
    await client.call('addMessage', { connectionId, recipientDids: ['did:example:bob'], payload: { ciphertext: 'c' } });
    await client.closeQuietly();
  };

  it('lets a push in flight finish within SHUTDOWN_TIMEOUT_MS', async () => {
    const server = await startWith(5_000);
    const connectionId = uniqueId('drained');
    hook.answerNext({ status: 503, headers: { 'retry-after': '1' } });
    await addThroughNewClient(server, connectionId);
    await hook.waitFor(connectionId, 1);
    await server.close();
    expect(hook.requestsFor(connectionId)).toHaveLength(2);
  });

  it('abandons a push still waiting to retry when SHUTDOWN_TIMEOUT_MS is over', async () => {
    const server = await startWith(200);
    const connectionId = uniqueId('abandoned');
    hook.answerNext({ status: 503, headers: { 'retry-after': '30' } });
    await addThroughNewClient(server, connectionId);
    await hook.waitFor(connectionId, 1);
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(hook.requestsFor(connectionId)).toHaveLength(1);
  });
});

describe('push notifications of tenants through a webhook', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mpr-push-tenants-'));
  const a = testToken('mediator-a', 'a');
  const b = testToken('mediator-b', 'b');
  let hook: FakeWebhookServer;
  let server: TestServer;

  beforeAll(async () => {
    hook = await FakeWebhookServer.start();
    writeTokensFile(path.join(dir, 'tokens.json'), [a, b]);
    server = await startTestServer({
      PUSH_WEBHOOK_URL: hook.url,
      PUSH_COALESCE_WINDOW_MS: String(WINDOW_MS),
      AUTH_TOKENS_FILE: path.join(dir, 'tokens.json'),
    });
  });
  afterAll(async () => {
    await server?.close();
    await hook?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the tenant, and coalesces per tenant: one device token in two tenants is woken for each', async () => {
    const connectionId = uniqueId('shared');
    const token = { type: 'fcm', token: 'one-device-two-mediators' };
    const ids: Record<string, string[]> = { a: [], b: [] };
    for (const [tenant, mediatorToken] of [
      ['a', a],
      ['b', b],
      ['a', a],
    ] as const) {
      const client = await JsonRpcWsClient.connect(server.wsUrl, { headers: bearer(mediatorToken) });
      const { messageId } = await client.call<{ messageId: string }>('addMessage', {
        connectionId,
        recipientDids: ['did:x'],
        payload: {},
        pushNotificationToken: token,
      });
      ids[tenant].push(messageId);
      await client.closeQuietly();
    }
    const requests = await hook.waitFor(connectionId, 2);
    await sleep(QUIET_MS);
    expect(hook.requestsFor(connectionId)).toHaveLength(2);
    expect(requests.map((request) => request.body).sort((x, y) => x.tenant.localeCompare(y.tenant))).toEqual([
      { tenant: 'a', connectionId, messageId: ids.a[0], token: token.token, type: 'fcm' },
      { tenant: 'b', connectionId, messageId: ids.b[0], token: token.token, type: 'fcm' },
    ]);
  });
});
