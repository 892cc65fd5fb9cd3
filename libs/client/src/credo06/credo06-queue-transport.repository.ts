import { CredoQueueAdapterCore, type CredoQueueAdapterOptions, type CredoQueuedMessage } from '../credo-queue.adapter-core';
import type { CredoEncryptedMessage } from '../credo-encrypted-message.types';

/** Options of {@link Credo06QueueTransportRepository}. */
export type Credo06QueueTransportRepositoryOptions = CredoQueueAdapterOptions;

/**
 * Credo 0.6 (`@credo-ts/didcomm` 0.6.x) `DidCommQueueTransportRepository` backed by the Message Pickup
 * Repository server, so that every mediator instance shares one queue. The `agentContext` argument is
 * not used: one server queue serves all tenants, keyed by connection id.
 *
 * @example
 * const client = new MessagePickupRepositoryClient({ url: 'wss://mpr.example.org', token })
 * const agent = new Agent({
 *   config, dependencies: agentDependencies,
 *   modules: {
 *     didcomm: new DidCommModule({
 *       queueTransportRepository: new Credo06QueueTransportRepository({ client }),
 *       mediator: { messageForwardingStrategy: DidCommMessageForwardingStrategy.QueueOnly },
 *       ...
 *     }),
 *   },
 * })
 * wireCredo06LiveSessions(agent, client)
 */
export class Credo06QueueTransportRepository {
  private readonly core: CredoQueueAdapterCore;

  constructor(options: Credo06QueueTransportRepositoryOptions) {
    this.core = new CredoQueueAdapterCore(options);
  }

  /** Number of pending messages for the connection (and recipient DID, if given). */
  getAvailableMessageCount(_agentContext: unknown, options: { connectionId: string; recipientDid?: string }): Promise<number> {
    return this.core.getAvailableMessageCount(options.connectionId, options.recipientDid);
  }

  /**
   * Takes pending messages, oldest first, within the connection's `maxReceiveBytes`. `deleteMessages` is
   * honoured by a take without deletion followed by `removeMessages`, so a lost answer never loses messages.
   */
  takeFromQueue(
    _agentContext: unknown,
    options: { connectionId: string; recipientDid?: string; limit?: number; deleteMessages?: boolean },
  ): Promise<CredoQueuedMessage<CredoEncryptedMessage>[]> {
    return this.core.takeFromQueue<CredoEncryptedMessage>(options);
  }

  /** Queues a message durably (with the connection's push token) and returns its id; the server sets `receivedAt`. */
  addMessage(
    _agentContext: unknown,
    options: { connectionId: string; recipientDids: string[]; payload: CredoEncryptedMessage; receivedAt?: Date },
  ): Promise<string> {
    return this.core.addMessage(options);
  }

  /** Acknowledges delivered messages. */
  removeMessages(_agentContext: unknown, options: { connectionId: string; messageIds: string[] }): Promise<void> {
    return this.core.removeMessages(options.connectionId, options.messageIds);
  }
}
