import { Notification, Provider, ResponseFailure } from '@parse/node-apn';
import { ApnsConfig, PushConfig } from '../config';
import { abandonable } from './abandonable.helper';
import { ApnsProviderFactory } from './apns-provider.factory';
import { KnownPushToken } from './known-push-token.types';
import { PushDeliveryError } from './push-delivery.error';
import { PushDelivery, PushTransport } from './push-transport.port';

/** APNs reasons after which the device token never works again (for this app). */
const DEAD_TOKEN_REASONS = new Set(['BadDeviceToken', 'Unregistered', 'ExpiredToken']);
/**
 * Reasons that blame our configuration rather than the token: `DeviceTokenNotForTopic` means APNS_TOPIC is not the
 * token's app (or a sandbox token meets production), so every token would be "dead": none is marked.
 */
const CONFIGURATION_REASONS = new Set(['DeviceTokenNotForTopic', 'TopicDisallowed', 'BadTopic']);
/** HTTP statuses worth another attempt: throttled, APNs failing or going away. */
const TRANSIENT_STATUSES = new Set([429, 500, 503]);

/** A notification kept this long by APNs while the device is unreachable (then dropped: the message stays queued). */
const EXPIRY_SECONDS = 24 * 3600;

/**
 * APNs directly, with a token-based (.p8) key through `@parse/node-apn` (HTTP/2, one provider per instance,
 * created at the first push). For apps whose iOS devices register through FCM, tokens are FCM tokens and go the
 * FCM way instead.
 */
export class ApnsPushAdapter extends PushTransport {
  readonly name = 'apns';
  private provider: Provider | undefined;
  private closed = false;

  constructor(
    private readonly apns: ApnsConfig,
    private readonly push: PushConfig,
    private readonly providers: ApnsProviderFactory,
  ) {
    super();
  }

  accepts(token: KnownPushToken | undefined): boolean {
    return token?.type === 'apns';
  }

  async send(delivery: PushDelivery, signal: AbortSignal): Promise<void> {
    if (signal.aborted) throw new PushDeliveryError('transient', 'aborted', 'shutting down');
    const note = new Notification();
    note.topic = this.apns.topic;
    note.expiry = Math.floor(Date.now() / 1000) + EXPIRY_SECONDS;
    note.payload = { connectionId: delivery.ref.connectionId, messageId: delivery.messageId };
    if (this.push.dataOnly) {
      // A background push must have priority 5 and nothing visible, or APNs refuses it.
      note.contentAvailable = true;
      note.pushType = 'background';
      note.priority = 5;
    } else {
      note.alert = { title: this.push.title, body: this.push.body };
      note.pushType = 'alert';
      note.priority = 10;
    }
    let result;
    try {
      result = await abandonable(this.client().send(note, delivery.token!.token), this.push.timeoutMs, signal);
    } catch (error) {
      if (error instanceof PushDeliveryError) throw error;
      throw new PushDeliveryError('transient', 'network', (error as Error).message);
    }
    const failure = result.failed[0];
    if (failure) throw classify(failure);
  }

  async close(): Promise<void> {
    this.closed = true;
    const provider = this.provider;
    this.provider = undefined;
    await provider?.shutdown();
  }

  private client(): Provider {
    // After close() a late attempt must not open a new HTTP/2 session that nothing would ever shut down.
    if (this.closed) throw new PushDeliveryError('transient', 'aborted', 'APNs transport closed');
    this.provider ??= new Provider(this.providers.providerOptions(this.apns, this.push.timeoutMs));
    return this.provider;
  }
}

/** One failed APNs send: a status with a reason from Apple, or a connection error. */
export function classify(failure: Pick<ResponseFailure, 'status' | 'response' | 'error'>): PushDeliveryError {
  const status = failure.status === undefined ? NaN : Number(failure.status);
  const reason = failure.response?.reason;
  // No status, or one that is not a number: no answer from Apple that could say anything about the token.
  if (!Number.isFinite(status)) return new PushDeliveryError('transient', 'network', failure.error?.message ?? 'no response from APNs');
  const label = reason ?? String(status);
  if (reason !== undefined && CONFIGURATION_REASONS.has(reason))
    return new PushDeliveryError('misconfigured', label, `APNs ${status} ${label}`);
  if (reason !== undefined && DEAD_TOKEN_REASONS.has(reason)) return new PushDeliveryError('dead-token', label, `APNs ${status} ${label}`);
  if (status === 410) return new PushDeliveryError('dead-token', label, `APNs ${status} ${label}`);
  // The library has already made a fresh provider token: the next attempt carries it.
  if (status === 403 && reason === 'ExpiredProviderToken') return new PushDeliveryError('transient', label, `APNs ${status} ${label}`);
  if (TRANSIENT_STATUSES.has(status)) return new PushDeliveryError('transient', label, `APNs ${status} ${label}`);
  return new PushDeliveryError('rejected', label, `APNs ${status} ${label}`);
}
