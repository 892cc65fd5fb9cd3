import { PushNotificationToken } from '@didcomm-mpr/protocol';
import { ConnectionRef } from '../config';

/** A message is waiting for a connection that no live session holds. */
export interface PushRequest {
  ref: ConnectionRef;
  messageId: string;
  /** The token that came with the message, if any (validated shape, unknown types included). */
  token?: PushNotificationToken;
  /**
   * `added`: a new message was committed (the default). `released`: messages went back to pending because the
   * session that had them ended, or its instance died. `redelivery`: the acknowledgement timeout passed.
   */
  reason?: 'added' | 'released' | 'redelivery';
}

/** Wakes a recipient's device. Implementations never throw into the caller: a push must not fail an add. */
export abstract class PushPort {
  abstract notify(request: PushRequest): void;
  /** A token came with a message that a live session received: remembered for the next push, nothing sent. */
  abstract rememberToken(ref: ConnectionRef, token: PushNotificationToken): void;
  /** A live session now holds the connection: the device is awake, so its coalescing window starts over. */
  abstract sessionStarted(ref: ConnectionRef): void;
}
