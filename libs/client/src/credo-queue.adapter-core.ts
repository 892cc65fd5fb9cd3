import type { MessagePickupRepositoryClient } from './message-pickup-repository.client';
import type { EncryptedMessage, PushNotificationToken, QueuedMessage } from '@didcomm-mpr/protocol';

/** A value, or a promise of it: the per-connection callbacks may look things up asynchronously. */
export type MaybePromise<T> = T | Promise<T>;

/** Options shared by the Credo 0.5 and 0.6 queue adapters. */
export interface CredoQueueAdapterOptions {
  /** The connection to the server; one client serves the adapter and the live-session wiring. */
  client: MessagePickupRepositoryClient;
  /**
   * The largest summed size (bytes) of the messages a take may return for this connection, e.g. what the
   * recipient's device can receive in one batch; `undefined` for no limit. Sent as `limitBytes`.
   */
  maxReceiveBytes?: (connectionId: string) => MaybePromise<number | undefined>;
  /**
   * The push token of the recipient's device on this connection, sent with each `addMessage` so the
   * server can wake an offline device; `undefined` if none is known.
   */
  pushNotificationToken?: (connectionId: string) => MaybePromise<PushNotificationToken | undefined>;
}

/** A queued message with Credo's `Date` for `receivedAt`. */
export interface CredoQueuedMessage<M> {
  id: string;
  receivedAt: Date;
  encryptedMessage: M;
}

/** Converts a queued message of the wire (ISO string) to Credo's shape (`Date`). */
export function toCredoQueuedMessage<M>(message: QueuedMessage): CredoQueuedMessage<M> {
  return { id: message.id, receivedAt: new Date(message.receivedAt), encryptedMessage: message.encryptedMessage as M };
}

/**
 * What the Credo 0.5 and 0.6 adapters share: the calls, with the per-connection `limitBytes` and push
 * token filled in and `receivedAt` turned into a `Date`. The adapters only differ in method signatures.
 */
export class CredoQueueAdapterCore {
  constructor(private readonly options: CredoQueueAdapterOptions) {}

  get client(): MessagePickupRepositoryClient {
    return this.options.client;
  }

  getAvailableMessageCount(connectionId: string, recipientDid: string | undefined): Promise<number> {
    return this.options.client.getAvailableMessageCount({ connectionId, recipientDid });
  }

  /**
   * Takes pending messages. With `deleteMessages` it does not ask the server to delete them in the take:
   * it takes without deleting, then acknowledges them with `removeMessages` once the answer is in hand.
   * So an answer lost with the connection leaves its messages `sending` on the server until the redelivery
   * timeout, and they are delivered later (at-least-once) instead of being lost; the take itself is then
   * safely resent after the reconnect. Should the acknowledgement fail, the call rejects and the messages
   * stay `sending` until that timeout.
   */
  async takeFromQueue<M>(options: {
    connectionId: string;
    recipientDid?: string;
    limit?: number;
    deleteMessages?: boolean;
  }): Promise<CredoQueuedMessage<M>[]> {
    const limitBytes = await this.options.maxReceiveBytes?.(options.connectionId);
    const messages = await this.options.client.takeFromQueue({
      connectionId: options.connectionId,
      recipientDid: options.recipientDid,
      limit: options.limit,
      limitBytes,
    });
    if (options.deleteMessages && messages.length > 0) {
      await this.options.client.removeMessages({ connectionId: options.connectionId, messageIds: messages.map((message) => message.id) });
    }
    return messages.map((message) => toCredoQueuedMessage<M>(message));
  }

  async addMessage(options: { connectionId: string; recipientDids: string[]; payload: object }): Promise<string> {
    const pushNotificationToken = await this.options.pushNotificationToken?.(options.connectionId);
    const { messageId } = await this.options.client.addMessage({
      connectionId: options.connectionId,
      recipientDids: options.recipientDids,
      payload: options.payload as EncryptedMessage,
      pushNotificationToken,
    });
    return messageId;
  }

  async removeMessages(connectionId: string, messageIds: string[]): Promise<void> {
    if (messageIds.length === 0) return;
    await this.options.client.removeMessages({ connectionId, messageIds });
  }
}
