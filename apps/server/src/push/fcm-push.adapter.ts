import { App, deleteApp, initializeApp } from 'firebase-admin/app';
import { getMessaging, Message } from 'firebase-admin/messaging';
import { FcmConfig, PushConfig } from '../config';
import { abandonable } from './abandonable.helper';
import { FcmAppFactory } from './fcm-app.factory';
import { KnownPushToken } from './known-push-token.types';
import { PushDeliveryError } from './push-delivery.error';
import { PushDelivery, PushTransport } from './push-transport.port';

/** FCM error codes (`messaging/…`) after which the token never works again. */
const DEAD_TOKEN_CODES = new Set(['messaging/registration-token-not-registered', 'messaging/invalid-registration-token']);
/**
 * `INVALID_ARGUMENT` is FCM's answer to a malformed token, but also to any other field it refuses (a payload too
 * large, a bad key in data): only the first may cost the device its token.
 */
const INVALID_ARGUMENT = 'messaging/invalid-argument';
const ABOUT_THE_TOKEN = /registration.?token/i;
/** Worth another attempt: FCM overloaded or failing, quota, network trouble. */
const TRANSIENT_CODES = new Set([
  'messaging/server-unavailable',
  'messaging/internal-error',
  'messaging/message-rate-exceeded',
  'messaging/device-message-rate-exceeded',
  'messaging/unknown-error',
  'app/network-error',
  'app/network-timeout',
  // Fetching the access token failed (Google's token endpoint unreachable or failing): nothing wrong with the push.
  'app/invalid-credential',
]);

/**
 * FCM through `firebase-admin` (`messaging().send`, HTTP v1), one SDK app per configured Firebase project, created
 * at the first push for it. The payload carries the connection and message ids only, never the message.
 */
export class FcmPushAdapter extends PushTransport {
  readonly name = 'fcm';
  private readonly apps = new Map<string, App>();
  private closed = false;

  constructor(
    private readonly fcm: FcmConfig,
    private readonly push: PushConfig,
    private readonly factory: FcmAppFactory,
    /** Makes SDK app names unique per server instance (tests run several in one process). */
    private readonly instanceId: string,
  ) {
    super();
  }

  accepts(token: KnownPushToken | undefined): boolean {
    return token?.type === 'fcm';
  }

  async send(delivery: PushDelivery, signal: AbortSignal): Promise<void> {
    // The SDK cannot cancel a send once started: at shutdown, do not start one.
    if (signal.aborted) throw new PushDeliveryError('transient', 'aborted', 'shutting down');
    const token = delivery.token!;
    const appId = token.appId !== undefined && this.fcm.credentialFiles[token.appId] !== undefined ? token.appId : 'default';
    const file = this.fcm.credentialFiles[appId];
    if (file === undefined)
      throw new PushDeliveryError('rejected', 'unknown-app', `no Firebase project for appId "${token.appId}" and no default`);
    const message: Message = {
      token: token.token,
      data: { connectionId: delivery.ref.connectionId, messageId: delivery.messageId },
      android: { priority: 'high' },
      ...(this.push.dataOnly
        ? { apns: { headers: { 'apns-push-type': 'background', 'apns-priority': '5' }, payload: { aps: { contentAvailable: true } } } }
        : { notification: { title: this.push.title, body: this.push.body } }),
    };
    try {
      // The SDK has no per-request timeout or cancellation: the attempt is abandoned (not aborted) on timeout.
      await abandonable(getMessaging(this.app(appId, file)).send(message), this.push.timeoutMs, signal);
    } catch (error) {
      throw classify(error);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const apps = [...this.apps.values()];
    this.apps.clear();
    await Promise.all(apps.map((app) => deleteApp(app)));
  }

  private app(appId: string, credentialFile: string): App {
    let app = this.apps.get(appId);
    if (!app) {
      // After close() a late attempt must not create an SDK app (and its sockets) that nothing would delete.
      if (this.closed) throw new PushDeliveryError('transient', 'aborted', 'FCM transport closed');
      app = initializeApp(this.factory.appOptions(appId, credentialFile), `mpr-${this.instanceId}-${appId}`);
      this.apps.set(appId, app);
    }
    return app;
  }
}

/** Maps what `messaging().send` rejects with (its errors carry a code, no HTTP status) to retry or not. */
export function classify(error: unknown): PushDeliveryError {
  if (error instanceof PushDeliveryError) return error;
  const code = (error as { code?: unknown }).code;
  const message = (error as Error).message ?? String(error);
  if (typeof code !== 'string') return new PushDeliveryError('transient', 'network', message);
  const reason = code.replace(/^(messaging|app)\//, '');
  if (DEAD_TOKEN_CODES.has(code) || (code === INVALID_ARGUMENT && ABOUT_THE_TOKEN.test(message)))
    return new PushDeliveryError('dead-token', reason, message);
  if (TRANSIENT_CODES.has(code)) return new PushDeliveryError('transient', reason, message);
  return new PushDeliveryError('rejected', reason, message);
}
