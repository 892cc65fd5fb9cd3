import { PushNotificationToken } from '@didcomm-mpr/protocol';

/** A message is waiting for a connection that no live session holds. */
export interface PushRequest {
  connectionId: string;
  messageId: string;
  /** The token that came with the message, if any (validated shape, unknown types included). */
  token?: PushNotificationToken;
}

/** Wakes a recipient's device. Implementations never throw into the caller: a push must not fail an add. */
export abstract class PushPort {
  abstract notify(request: PushRequest): void;
}
