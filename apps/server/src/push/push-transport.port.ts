import { ConnectionRef } from '../config';
import { KnownPushToken } from './known-push-token.types';

/** One push to send: what the device is told, and the token when one is known. */
export interface PushDelivery {
  ref: ConnectionRef;
  messageId: string;
  token: KnownPushToken | undefined;
}

/**
 * One way of waking a device (FCM, APNs, a webhook). `send` makes a single attempt and rejects with a
 * `PushDeliveryError` that says whether another attempt is worth it; retries are the caller's.
 */
export abstract class PushTransport {
  /** Label in metrics and logs. */
  abstract readonly name: string;
  /** Whether this transport can wake the device for this delivery. */
  abstract accepts(token: KnownPushToken | undefined): boolean;
  abstract send(delivery: PushDelivery, signal: AbortSignal): Promise<void>;
  /** Releases connections and SDK apps at shutdown. */
  abstract close(): Promise<void>;
}
