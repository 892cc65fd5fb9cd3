import { AppConfig } from '../config';
import { MessageRepository, PushTokenRepository, StorageException } from '../database';
import { MetricsService } from '../metrics';
import { SessionRegistryPort } from '../session-registry';
import { InProcessPushWindowStore } from './in-process-push-window.store';
import { KnownPushToken } from './known-push-token.types';
import { PushDeliveryError } from './push-delivery.error';
import { PushDelivery, PushTransport } from './push-transport.port';
import { PushService } from './push.service';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ref = (connectionId: string, tenant = 'default') => ({ tenant, connectionId });

/** A transport scripted per attempt: each entry answers one send (undefined: delivered). */
class ScriptedTransport extends PushTransport {
  readonly sent: { delivery: PushDelivery; at: number }[] = [];
  constructor(
    readonly name: string,
    private readonly script: (PushDeliveryError | undefined)[] = [],
    private readonly types: string[] | 'all' = 'all',
  ) {
    super();
  }
  accepts(token: KnownPushToken | undefined): boolean {
    return this.types === 'all' || (token !== undefined && this.types.includes(token.type));
  }
  async send(delivery: PushDelivery): Promise<void> {
    this.sent.push({ delivery, at: Date.now() });
    const failure = this.script.shift();
    if (failure) throw failure;
  }
  async close(): Promise<void> {}
}

function storageError(): StorageException {
  return StorageException.from(Object.assign(new Error('connection terminated'), { code: '57P01' }));
}

function build(transports: PushTransport[], tokens: Partial<PushTokenRepository>, push: Partial<AppConfig['push']> = {}) {
  const config = {
    shutdownTimeoutMs: 2_000,
    push: { coalesceWindowMs: 0, maxAttempts: 3, retryBaseMs: 1, timeoutMs: 1_000, ...push },
  } as unknown as AppConfig;
  const metrics = new MetricsService();
  const sessions = { get: async () => undefined } as unknown as SessionRegistryPort;
  const messages = { countPending: async () => 1 } as unknown as MessageRepository;
  const repository = {
    remember: async () => ({ dead: false }),
    latest: async () => undefined,
    markDead: async () => undefined,
    ...tokens,
  } as unknown as PushTokenRepository;
  const service = new PushService(config, transports, repository, new InProcessPushWindowStore(), metrics, sessions, messages);
  return { service, metrics };
}

async function until(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

describe('PushService', () => {
  it('still sends with the token in hand when storing it fails', async () => {
    const fcm = new ScriptedTransport('fcm', [], ['fcm']);
    const { service } = build([fcm], { remember: async () => Promise.reject(storageError()) });
    service.notify({ ref: ref('c1'), messageId: 'm1', token: { type: 'fcm', token: 'live' } });
    await until(() => fcm.sent.length === 1);
    expect(fcm.sent[0].delivery.token).toEqual({ type: 'fcm', token: 'live' });
    await service.beforeApplicationShutdown();
  });

  it('wakes a device whose session ended while its token was still being stored', async () => {
    // A live add hands the token over for storing; the session ends and its message is released before the write
    // commits. The database knows no token yet, so the decision must use the one in flight.
    const fcm = new ScriptedTransport('fcm', [], ['fcm']);
    let commit!: () => void;
    const stored = new Promise<void>((resolve) => (commit = resolve));
    const { service } = build([fcm], { remember: async () => stored.then(() => ({ dead: false })), latest: async () => undefined });
    service.rememberToken(ref('c1'), { type: 'fcm', token: 'live' });
    service.notify({ ref: ref('c1'), messageId: 'm1', reason: 'released' });
    commit();
    await until(() => fcm.sent.length === 1);
    expect(fcm.sent[0].delivery).toMatchObject({ ref: ref('c1'), messageId: 'm1', token: { type: 'fcm', token: 'live' } });
    await service.beforeApplicationShutdown();
  });

  it("falls back to the connection's remembered live token when the message carries a dead one", async () => {
    const fcm = new ScriptedTransport('fcm', [], ['fcm']);
    const { service } = build([fcm], {
      remember: async () => ({ dead: true }),
      latest: async () => ({ type: 'fcm', token: 'remembered' }),
    });
    service.notify({ ref: ref('c1'), messageId: 'm1', token: { type: 'fcm', token: 'dead' } });
    await until(() => fcm.sent.length === 1);
    expect(fcm.sent[0].delivery.token?.token).toBe('remembered');
    await service.beforeApplicationShutdown();
  });

  it("keeps the other transport sending when one transport's dead-token mark cannot be stored", async () => {
    const fcm = new ScriptedTransport('fcm', [new PushDeliveryError('dead-token', 'registration-token-not-registered', 'gone')], ['fcm']);
    const hook = new ScriptedTransport('webhook', [new PushDeliveryError('transient', '503', 'busy')]);
    const { service, metrics } = build([fcm, hook], { markDead: async () => Promise.reject(storageError()) });
    service.notify({ ref: ref('c1'), messageId: 'm1', token: { type: 'fcm', token: 't' } });
    await until(() => hook.sent.length === 2);
    expect(fcm.sent).toHaveLength(1);
    expect((await metrics.pushFailed.get()).values).toEqual(
      expect.arrayContaining([expect.objectContaining({ labels: { transport: 'fcm', reason: 'storage' }, value: 1 })]),
    );
    await service.beforeApplicationShutdown();
  });

  it("retries each transport on its own: FCM does not wait for the webhook's backoff", async () => {
    const fcm = new ScriptedTransport('fcm', [], ['fcm']);
    const hook = new ScriptedTransport('webhook', [new PushDeliveryError('transient', '503', 'busy', 500)]);
    const { service } = build([fcm, hook], {}, { retryBaseMs: 1 });
    const started = Date.now();
    service.notify({ ref: ref('c1'), messageId: 'm1', token: { type: 'fcm', token: 't' } });
    await until(() => fcm.sent.length === 1 && hook.sent.length === 1);
    expect(fcm.sent[0].at - started).toBeLessThan(400);
    await until(() => hook.sent.length === 2);
    expect(hook.sent[1].at - hook.sent[0].at).toBeGreaterThanOrEqual(480);
    await service.beforeApplicationShutdown();
  });

  it('refuses every decision once the drain started, and drops retries still waiting when the budget is spent', async () => {
    const hook = new ScriptedTransport('webhook', [new PushDeliveryError('transient', '503', 'busy', 60_000)]);
    const { service } = build([hook], {});
    service.notify({ ref: ref('c1'), messageId: 'm1' });
    await until(() => hook.sent.length === 1);
    const started = Date.now();
    const drained = service.beforeApplicationShutdown();
    service.notify({ ref: ref('c2'), messageId: 'm2', reason: 'added' });
    await drained;
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(hook.sent.map((s) => s.delivery.ref)).toEqual([ref('c1')]);
  });

  it('coalesces a device per tenant: the same token under two tenants gets a push for each', async () => {
    const fcm = new ScriptedTransport('fcm', [], ['fcm']);
    const { service } = build([fcm], {}, { coalesceWindowMs: 60_000 });
    const token = { type: 'fcm', token: 'shared-device' };
    service.notify({ ref: ref('c1', 'a'), messageId: 'm1', token });
    service.notify({ ref: ref('c1', 'b'), messageId: 'm2', token });
    service.notify({ ref: ref('c1', 'a'), messageId: 'm3', token });
    await until(() => fcm.sent.length === 2);
    await sleep(50);
    expect(fcm.sent.map((s) => s.delivery.ref).sort((x, y) => x.tenant.localeCompare(y.tenant))).toEqual([ref('c1', 'a'), ref('c1', 'b')]);
    await service.beforeApplicationShutdown();
  });
});
