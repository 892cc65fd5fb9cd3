import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  MessagePickupRepositoryClient,
  PickupForbiddenError,
  PickupRpcError,
  PickupTimeoutError,
  RpcErrorCode,
  type MessagesReceivedParams,
} from '@didcomm-mpr/client';
import { selfSignedCertificate, testToken, writeTokensFile } from '@didcomm-mpr/test-kit';
import { startTestServer, type TestServer } from '../support/test-server';
import { waitUntil } from '../support/client-waits';

/**
 * The client library against a server with TLS (a self-signed certificate, trusted through the client's `ca`) and a
 * tokens file: rate-limited calls (-32004) are retried after the server's `retryAfterMs`, a call outside the token's
 * role (-32005) fails at once with `PickupForbiddenError`.
 */
describe('MessagePickupRepositoryClient over wss:// with scoped tokens', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mpr-client-access-'));
  const { cert, key } = selfSignedCertificate('127.0.0.1');
  const mediator = testToken('mediator', 'tenant-x');
  const monitor = testToken('monitor', 'tenant-x', 'monitor');
  const limited = testToken('limited', 'tenant-x', 'mediator', 20);
  let server: TestServer;
  const clients: MessagePickupRepositoryClient[] = [];
  const client = (token: string, options: { ca?: string; requestTimeoutMs?: number } = { ca: cert }) => {
    const made = new MessagePickupRepositoryClient({
      url: server.wsUrl,
      token,
      requestTimeoutMs: 10_000,
      onError: () => undefined,
      ...options,
    });
    clients.push(made);
    return made;
  };

  beforeAll(async () => {
    writeFileSync(path.join(dir, 'cert.pem'), cert);
    writeFileSync(path.join(dir, 'key.pem'), key);
    writeTokensFile(path.join(dir, 'tokens.json'), [mediator, monitor, limited]);
    server = await startTestServer({
      TLS_CERT_FILE: path.join(dir, 'cert.pem'),
      TLS_KEY_FILE: path.join(dir, 'key.pem'),
      AUTH_TOKENS_FILE: path.join(dir, 'tokens.json'),
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((made) => made.close()));
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('works over wss:// with the self-signed certificate as its CA: adds, takes and live notifications', async () => {
    expect(server.wsUrl).toMatch(/^wss:\/\/127\.0\.0\.1:/);
    const holder = client(mediator.token);
    const sender = client(mediator.token);
    const connectionId = randomUUID();
    const notified: MessagesReceivedParams[] = [];
    holder.onMessagesReceived((notification) => notified.push(notification));
    await expect(holder.addLiveSession({ connectionId, sessionId: 's' })).resolves.toBe(true);
    const { messageId } = await sender.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: { over: 'tls' } });
    await waitUntil('the live notification over wss://', () => notified.some((n) => n.messages.some((m) => m.id === messageId)), 5_000);
    await expect(holder.removeMessages({ connectionId, messageIds: [messageId] })).resolves.toBe(true);
    await sender.addMessage({ connectionId: `${connectionId}-queued`, recipientDids: ['did:key:bob'], payload: { queued: true } });
    expect((await sender.takeFromQueue({ connectionId: `${connectionId}-queued` })).map((m) => m.encryptedMessage)).toEqual([
      { queued: true },
    ]);
  });

  it('does not connect without the CA, and says why', async () => {
    const untrusting = client(mediator.token, { requestTimeoutMs: 1_500 });
    const failure = await untrusting.ping().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PickupTimeoutError);
    expect((failure as Error).message).toMatch(/no connection .*self.signed certificate/i);
  });

  it('reports a call outside the token’s role as PickupForbiddenError at once, without retrying it', async () => {
    const watcher = client(monitor.token);
    const connectionId = randomUUID();
    const started = Date.now();
    const failure = await watcher
      .addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: {} })
      .catch((error: unknown) => error);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(failure).toBeInstanceOf(PickupForbiddenError);
    expect(failure).toBeInstanceOf(PickupRpcError);
    expect(failure).toMatchObject({ code: RpcErrorCode.Forbidden, method: 'addMessage', role: 'monitor', retryable: false });
    expect((failure as Error).message).toMatch(/addMessage refused: the client's token has the role "monitor"/);
    // What a monitor may do, it does.
    await expect(watcher.getAvailableMessageCount({ connectionId })).resolves.toBe(0);
    await expect(watcher.getQueueStats({ connectionId })).resolves.toMatchObject({ pending: 0 });
  });

  it('retries calls refused with -32004 after the server’s retryAfterMs, within the call’s timeout', async () => {
    const busy = client(limited.token);
    const connectionId = randomUUID();
    await busy.connect();
    const started = Date.now();
    // 60 calls at 20 a second (a bucket of 20): the last ones can only succeed about two seconds in.
    const counts = await Promise.all(Array.from({ length: 60 }, () => busy.getAvailableMessageCount({ connectionId })));
    const elapsedMs = Date.now() - started;
    expect(counts).toEqual(Array.from({ length: 60 }, () => 0));
    expect(elapsedMs).toBeGreaterThanOrEqual(1_500);
    expect(busy.connected).toBe(true);
  });
});
