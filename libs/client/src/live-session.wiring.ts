import { toCredoQueuedMessage, type CredoQueuedMessage } from './credo-queue.adapter-core';
import type { CredoEncryptedMessage } from './credo-encrypted-message.types';
import type { MessagePickupRepositoryClient } from './message-pickup-repository.client';

/** A message pickup session as Credo 0.5 and 0.6 describe it (only the fields used here). */
export interface CredoPickupSessionLike {
  id: string;
  connectionId: string;
  role: string;
}

/** A live-session event of Credo's event emitter (only the fields used here). */
export interface CredoLiveSessionEventLike {
  payload: { session: CredoPickupSessionLike };
}

/** Credo's `agent.events` (only the methods used here). */
export interface CredoEventsLike {
  // `any`: Credo's `on` is generic over its event types, which this package does not import; no narrower
  // signature accepts Credo's generic one (test/client/credo-adapters.types.ts checks it against 0.5 and 0.6).
  /* eslint-disable @typescript-eslint/no-explicit-any */
  on(event: any, listener: (event: any) => void | Promise<void>): void;
  off(event: any, listener: (event: any) => void | Promise<void>): void;
  /* eslint-enable @typescript-eslint/no-explicit-any */
}

/** Credo's message pickup API (`agent.messagePickup` in 0.5, `agent.didcomm.messagePickup` in 0.6), only the methods used here. */
export interface CredoMessagePickupApiLike {
  // `any`: the role is Credo's own enum.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  getLiveModeSession(options: { connectionId: string; role?: any }): Promise<CredoPickupSessionLike | undefined>;
  deliverMessages(options: { pickupSessionId: string; messages: CredoQueuedMessage<CredoEncryptedMessage>[] }): Promise<void>;
  deliverMessagesFromQueue(options: { pickupSessionId: string }): Promise<void>;
}

/** Options of the live-session wiring helpers. */
export interface LiveSessionWiringOptions {
  /**
   * Told of failures that have no caller to reject: registering or removing a session on the server,
   * delivering notified messages to the wallet. Default: the agent's logger (`agent.config.logger.error`).
   */
  onError?: (error: unknown, context: string) => void;
}

/** The event names of one Credo line. */
export interface CredoLiveSessionEventNames {
  saved: string;
  removed: string;
}

/** Credo's role of the mediator side of a pickup session. */
const MESSAGE_HOLDER = 'MessageHolder';

/**
 * Joins a Credo agent's live pickup sessions to the server's: registers each session the agent opens
 * as message holder, removes it (by its id, so a late removal cannot end a newer session elsewhere)
 * when it ends, and hands every `messagesReceived` notification to the agent's live session with
 * `deliverMessages`. Not `deliverMessagesFromQueue`: notified messages are already `sending`, a take
 * would not see them. After a reconnect re-registers a session, the messages that arrived meanwhile are
 * pending (not pushed), so they are delivered with `deliverMessagesFromQueue`. Failed registrations and
 * removals are reported to `onError` and retried by the client; a notification for a connection whose
 * live session the agent no longer has ends the server session again.
 */
export class LiveSessionWiring {
  private readonly unsubscribers: Array<() => void> = [];

  constructor(
    private readonly client: MessagePickupRepositoryClient,
    events: CredoEventsLike,
    private readonly pickup: CredoMessagePickupApiLike,
    names: CredoLiveSessionEventNames,
    private readonly onError: (error: unknown, context: string) => void,
  ) {
    const saved = (event: CredoLiveSessionEventLike) => this.sessionSaved(event.payload.session);
    const removed = (event: CredoLiveSessionEventLike) => this.sessionRemoved(event.payload.session);
    events.on(names.saved, saved);
    events.on(names.removed, removed);
    this.unsubscribers.push(
      () => events.off(names.saved, saved),
      () => events.off(names.removed, removed),
      client.onMessagesReceived(({ connectionId, messages }) =>
        this.deliver(
          connectionId,
          messages.map((message) => toCredoQueuedMessage<CredoEncryptedMessage>(message)),
        ),
      ),
      client.onLiveSessionReclaim(({ connectionId, sessionId, reclaimed, error }) => {
        if (reclaimed) this.deliverBacklog(connectionId, sessionId);
        // The client keeps the session and tries again (with backoff, and at the next reconnect).
        else if (error) this.onError(error, `registering the live session of connection ${connectionId} again (retrying)`);
      }),
    );
  }

  /** Stops listening to the agent and the client (sessions already registered stay registered). */
  dispose(): void {
    for (const unsubscribe of this.unsubscribers.splice(0)) unsubscribe();
  }

  private sessionSaved(session: CredoPickupSessionLike): void {
    if (session.role !== MESSAGE_HOLDER) return;
    // The client records the session before the call; a failed registration is reported here and retried
    // by the client until the server accepts or refuses it.
    this.client
      .addLiveSession({ connectionId: session.connectionId, sessionId: session.id })
      .catch((error: unknown) => this.onError(error, `addLiveSession for connection ${session.connectionId} (retrying)`));
  }

  private sessionRemoved(session: CredoPickupSessionLike): void {
    if (session.role !== MESSAGE_HOLDER) return;
    // A removal by session id that fails is kept and retried by the client until the server answers.
    this.client
      .removeLiveSession({ connectionId: session.connectionId, sessionId: session.id })
      .catch((error: unknown) => this.onError(error, `removeLiveSession for connection ${session.connectionId} (retrying)`));
  }

  private deliver(connectionId: string, messages: CredoQueuedMessage<CredoEncryptedMessage>[]): void {
    const run = async () => {
      const session = await this.pickup.getLiveModeSession({ connectionId, role: MESSAGE_HOLDER });
      if (session) {
        await this.pickup.deliverMessages({ pickupSessionId: session.id, messages });
        return;
      }
      // The wallet left this instance (Credo holds no live session for it), yet the server still pushes
      // here: our removal was lost, failed, or crossed this notification. End the server session again, by
      // its id. The notified messages are `sending`; they become pending again at once when the session
      // ends, for the wallet's next pickup wherever it connects.
      const held = this.client.liveSessions.get(connectionId);
      const sessionIds = new Set([
        ...(held === undefined ? [] : [held]),
        ...(this.client.pendingLiveSessionRemovals.get(connectionId) ?? []),
      ]);
      if (sessionIds.size === 0) {
        // Only a notification that crossed a successful removal gets here; that removal already made the
        // messages pending again. Said out loud rather than dropped silently.
        throw new Error(
          `${messages.length} live message(s) arrived for connection ${connectionId}, whose live session this client no longer holds; they are pending again on the server`,
        );
      }
      await Promise.all([...sessionIds].map((sessionId) => this.client.removeLiveSession({ connectionId, sessionId })));
    };
    run().catch((error: unknown) => this.onError(error, `delivering ${messages.length} live message(s) to connection ${connectionId}`));
  }

  private deliverBacklog(connectionId: string, sessionId: string): void {
    const run = async () => {
      const session = await this.pickup.getLiveModeSession({ connectionId, role: MESSAGE_HOLDER });
      if (session?.id === sessionId) await this.pickup.deliverMessagesFromQueue({ pickupSessionId: sessionId });
    };
    run().catch((error: unknown) => this.onError(error, `delivering the queue of connection ${connectionId} after a reconnect`));
  }
}

/** The default error sink: the agent's own logger when it has one. */
export function agentErrorSink(agent: {
  config?: { logger?: { error(message: string, data?: Record<string, unknown>): void } };
}): (error: unknown, context: string) => void {
  const logger = agent.config?.logger;
  return (error, context) => {
    const message = `Message Pickup Repository: ${context} failed`;
    if (logger) logger.error(message, { error });
    else console.error(message, error);
  };
}
