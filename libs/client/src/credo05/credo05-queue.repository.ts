import { CredoQueueAdapterCore, type CredoQueueAdapterOptions, type CredoQueuedMessage } from '../credo-queue.adapter-core';
import type { CredoEncryptedMessage } from '../credo-encrypted-message.types';

/** Options of {@link Credo05MessagePickupRepository}. */
export type Credo05MessagePickupRepositoryOptions = CredoQueueAdapterOptions;

/**
 * Credo 0.5 (`@credo-ts/core` 0.5.x) `MessagePickupRepository` backed by the Message Pickup Repository
 * server, so that every mediator instance shares one queue.
 *
 * @example
 * const client = new MessagePickupRepositoryClient({ url: 'wss://mpr.example.org', token })
 * const agent = new Agent({
 *   config, dependencies: agentDependencies,
 *   modules: {
 *     mediator: new MediatorModule({ messageForwardingStrategy: MessageForwardingStrategy.QueueOnly }),
 *     messagePickup: new MessagePickupModule({ messagePickupRepository: new Credo05MessagePickupRepository({ client }) }),
 *   },
 * })
 * wireCredo05LiveSessions(agent, client)
 */
export class Credo05MessagePickupRepository {
  private readonly core: CredoQueueAdapterCore;

  constructor(options: Credo05MessagePickupRepositoryOptions) {
    this.core = new CredoQueueAdapterCore(options);
  }

  /** Number of pending messages for the connection (and recipient DID, if given). */
  getAvailableMessageCount(options: { connectionId: string; recipientDid?: string }): Promise<number> {
    return this.core.getAvailableMessageCount(options.connectionId, options.recipientDid);
  }

  /**
   * Takes pending messages, oldest first, within the connection's `maxReceiveBytes`. `deleteMessages` is
   * honoured by a take without deletion followed by `removeMessages`, so a lost answer never loses messages.
   */
  takeFromQueue(options: {
    connectionId: string;
    recipientDid?: string;
    limit?: number;
    deleteMessages?: boolean;
  }): Promise<CredoQueuedMessage<CredoEncryptedMessage>[]> {
    return this.core.takeFromQueue<CredoEncryptedMessage>(options);
  }

  /** Queues a message durably (with the connection's push token) and returns its id. */
  addMessage(options: { connectionId: string; recipientDids: string[]; payload: CredoEncryptedMessage }): Promise<string> {
    return this.core.addMessage(options);
  }

  /** Acknowledges delivered messages. */
  removeMessages(options: { connectionId: string; messageIds: string[] }): Promise<void> {
    return this.core.removeMessages(options.connectionId, options.messageIds);
  }
}
