import type { AgentContext, EncryptedMessage, LiveSession, SessionService } from './peer-library.types';

/** Receives what the library delivers to a live session (the real API would pack it and send it to the device). */
export type DeliveryHandler = (session: LiveSession, messages: { id: string; encryptedMessage: EncryptedMessage }[]) => void;

/**
 * Stands in for DidCommMessagePickupApi: getLiveModeSession and deliverMessages answered from the real session
 * service, as the real API does; deliverMessagesFromQueue (the library's answer to another instance's NOTIFY) refused.
 */
export class MessagePickupApiStub {
  onDeliver: DeliveryHandler | undefined;

  constructor(
    private readonly sessions: SessionService,
    private readonly agentContext: AgentContext,
  ) {}

  async getLiveModeSession(options: { connectionId: string; role?: string }): Promise<LiveSession | undefined> {
    return this.sessions.getLiveSessionByConnectionId(this.agentContext, options);
  }

  async deliverMessages(options: {
    pickupSessionId: string;
    messages: { id: string; encryptedMessage: EncryptedMessage }[];
  }): Promise<void> {
    const session = this.sessions.getLiveSession(this.agentContext, options.pickupSessionId);
    if (!session) throw new Error(`No active live mode session found with id ${options.pickupSessionId}`);
    this.onDeliver?.(session, options.messages);
  }

  async deliverMessagesFromQueue(): Promise<void> {
    // Called on a NOTIFY from another instance of the library; the bench runs one instance.
    throw new Error('deliverMessagesFromQueue: the bench runs a single instance of the peer');
  }
}
