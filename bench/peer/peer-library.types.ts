/**
 * The few members of the peer library and of Credo 0.6.3 that the bench's peer process uses, declared here so that
 * the repository typechecks without bench/peer/node_modules (installed by the bench on first use).
 */
export type Token = unknown;
export type EncryptedMessage = Record<string, unknown>;

export interface DependencyManager {
  registerInstance(token: Token, instance: unknown): void;
  resolve<T>(token: Token): T;
}

export interface AgentContext {
  readonly dependencyManager: DependencyManager;
}

export interface LiveSession {
  id: string;
  connectionId: string;
}

export interface SessionService {
  start(agentContext: AgentContext): void;
  getLiveSession(agentContext: AgentContext, sessionId: string): LiveSession | undefined;
  getLiveSessionByConnectionId(agentContext: AgentContext, options: { connectionId: string; role?: string }): LiveSession | undefined;
  saveLiveSession(
    agentContext: AgentContext,
    options: { connectionId: string; protocolVersion: string; role: string; transportSessionId: string },
  ): void;
  removeLiveSession(agentContext: AgentContext, options: { connectionId: string }): void;
}

export interface Pool {
  options: Record<string, unknown>;
  query<R>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
  end(): Promise<void>;
}

export interface TransportQueuePostgres {
  messagesCollection: Pool | undefined;
  pubSubInstance: { close(): Promise<void> };
  initialize(agent: { context: AgentContext; events: unknown }): Promise<void>;
  addMessage(
    agentContext: AgentContext,
    options: { connectionId: string; recipientDids: string[]; payload: EncryptedMessage },
  ): Promise<string>;
  takeFromQueue(
    agentContext: AgentContext,
    options: { connectionId: string; limit?: number; deleteMessages?: boolean; recipientDid?: string },
  ): Promise<{ id: string }[]>;
  removeMessages(agentContext: AgentContext, options: { connectionId: string; messageIds: string[] }): Promise<void>;
  shutdown(agentContext: AgentContext): Promise<void>;
}

export interface CredoCore {
  DependencyManager: new () => DependencyManager;
  AgentConfig: new (init: { label: string }, dependencies: unknown) => unknown;
  AgentContext: new (options: {
    dependencyManager: DependencyManager;
    contextCorrelationId: string;
    isRootAgentContext?: boolean;
  }) => AgentContext;
  EventEmitter: new (dependencies: unknown, stop$: unknown) => unknown;
  InjectionSymbols: { AgentDependencies: symbol; Stop$: symbol; Logger: symbol };
}

export interface CredoDidComm {
  DidCommMessagePickupSessionService: new () => SessionService;
  DidCommMessagePickupApi: Token;
  DidCommMessagePickupSessionRole: { MessageHolder: string };
}
