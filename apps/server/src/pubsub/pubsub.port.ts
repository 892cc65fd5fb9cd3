import { ConnectionRef } from '../config';

/** A message as it travels to the instance holding its connection's live session. */
export interface AvailableMessage {
  id: string;
  receivedAt: string;
  /** The payload's JSON text; absent when it was too large to carry, the holder then reads it from PostgreSQL. */
  payload?: string;
  /**
   * Set when the message was inserted already sending, claimed for this instance's live session with that token:
   * the holder sends it without a claim if it still holds that session, and releases it otherwise.
   */
  claimedFor?: number;
}

/** "These messages were committed (or went back to pending) for this connection". */
export interface MessagesAvailableEvent {
  ref: ConnectionRef;
  messages: AvailableMessage[];
  /**
   * Set (with no messages) to tell the instance holding the connection's session that sessions with a token up
   * to this one ended: it was taken over, or removed, through another instance.
   */
  endSessionsUpTo?: number;
  /**
   * When the adding instance committed these messages (epoch ms; absent for messages pending again): the holder
   * measures live-delivery latency from it.
   */
  committedAt?: number;
}

export type MessagesAvailableHandler = (event: MessagesAvailableEvent) => void;

/**
 * Per-connection channels between server instances, one per connection of a tenant. Only the instance holding a connection's live session
 * subscribes to its channel; a publish reports how many subscribers received it, which is how the sender
 * knows whether anyone holds the session (and, from the push issue on, whether to wake the device).
 */
export abstract class PubSubPort {
  /** Registers the single handler of this instance; events of subscribed connections arrive there. */
  abstract onMessagesAvailable(handler: MessagesAvailableHandler): void;
  /** Publishes to the connection's channel; resolves with the number of subscribers that received it. */
  abstract publish(event: MessagesAvailableEvent): Promise<number>;
  abstract subscribe(ref: ConnectionRef): Promise<void>;
  abstract unsubscribe(ref: ConnectionRef): Promise<void>;
  /** For /health: whether the transport is connected, and how. */
  abstract health(): { status: 'up' | 'degraded' | 'down'; mode: string };
}
