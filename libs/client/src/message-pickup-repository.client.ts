import { randomUUID } from 'node:crypto';
import {
  type AddLiveSessionParams,
  type AddMessageParams,
  type AddMessageResult,
  type GetAvailableMessageCountParams,
  type GetLiveSessionParams,
  type GetQueueStatsParams,
  type MessagesReceivedParams,
  type QueuedMessage,
  type QueueStats,
  type RemoveAllMessagesParams,
  type RemoveLiveSessionParams,
  type RemoveMessagesParams,
  type TakeFromQueueParams,
  RpcMethod,
  RpcNotification,
} from '@didcomm-mpr/protocol';
import { PickupClientClosedError } from './errors/pickup-client-closed.error';
import { PickupFrameTooLargeError } from './errors/pickup-frame-too-large.error';
import { PickupRpcError } from './errors/pickup-rpc.error';
import { backoffDelay } from './transport/backoff.policy';
import { ReconnectingRpcSocket } from './transport/reconnecting-rpc.socket';

/** Options of {@link MessagePickupRepositoryClient}. Only `url` (or `urls`) is required. */
export interface MessagePickupRepositoryClientOptions {
  /** The server's WebSocket URL (`ws:` or `wss:`), e.g. `wss://mpr.example.org`. Give `urls` instead for failover. */
  url?: string;
  /**
   * Several server URLs (instances, or load balancers): the client uses one at a time and moves to the
   * next when a connection attempt fails, a connection drops soon after opening, or the server announces
   * its shutdown. Give `url` or a non-empty `urls`, not both.
   */
  urls?: string[];
  /**
   * Bearer token sent in the `Authorization` header of the WebSocket upgrade: one whose digest is in the server's
   * `AUTH_TOKENS_FILE` (or one of its `AUTH_TOKENS`). Its tenant decides which connections the client's calls
   * reach; its role what it may call (a `monitor` token gets `PickupForbiddenError` for every change).
   */
  token?: string;
  /**
   * CA certificate(s), PEM, to trust for `wss:` URLs instead of Node's built-in list: for a server whose
   * certificate is issued by a private CA (or is self-signed, in which case give the certificate itself).
   * A `Buffer` is a `Uint8Array`.
   */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>;
  /**
   * How long a call may take, connection waits included, before it fails with `PickupTimeoutError`
   * (milliseconds, default 10000).
   */
  requestTimeoutMs?: number;
  /** How long one WebSocket opening handshake may take (milliseconds, default 5000). */
  connectTimeoutMs?: number;
  /**
   * First reconnect delay; it doubles per failed round over all URLs, and starts over only after a
   * connection stayed up for 5 seconds (milliseconds, default 250).
   */
  reconnectBaseDelayMs?: number;
  /** Longest reconnect delay (milliseconds, default 30000). */
  reconnectMaxDelayMs?: number;
  /** Interval of this side's WebSocket pings; two unanswered pings drop the socket (milliseconds, default 15000). */
  heartbeatIntervalMs?: number;
  /** Largest frame accepted from the server (bytes, default 64 MiB). */
  maxPayloadBytes?: number;
  /**
   * Largest request frame sent to the server (bytes, default 4 MiB + 64 KiB, the server's default
   * `MAX_FRAME_BYTES`): a larger call fails at once with `PickupFrameTooLargeError` instead of making the
   * server close the connection. Set it to the server's `MAX_FRAME_BYTES` if that differs.
   */
  maxFrameBytes?: number;
  /**
   * Told of failures that have no caller to reject: exceptions thrown by (or promises rejected by) the
   * listeners given to `onMessagesReceived`, `onLiveSessionReclaim`, `onConnect`, `onDisconnect`, live
   * session removals retried in the background that were given up, and `messagesReceived` notifications
   * dropped because their params were not the protocol's. Default: `console.error`.
   */
  onError?: (error: unknown, context: string) => void;
}

/** Listener of `messagesReceived` notifications. */
export type MessagesReceivedListener = (notification: MessagesReceivedParams) => void;

/**
 * Outcome of a live session's re-registration (with `reclaim: true`), after a reconnect or as a retry
 * of a registration that failed: `reclaimed` true (held again), or false with no `error` (another holder
 * took it meanwhile: forgotten), or false with an `error` (the call failed, e.g. timed out: still
 * remembered, tried again with backoff while connected and at the next reconnect).
 */
export interface LiveSessionReclaimEvent {
  connectionId: string;
  sessionId: string;
  reclaimed: boolean;
  error?: Error;
}

/** Listener of live session re-registrations. */
export type LiveSessionReclaimListener = (event: LiveSessionReclaimEvent) => void;

/** A live session this client holds or is registering. */
interface SessionIntent {
  sessionId: string;
  /** A registration call for it is under way (resent by the transport with `reclaim: true` if its socket drops). */
  inFlight: boolean;
  /** Failed attempts in a row, for the retry delay. */
  attempts: number;
  retryTimer?: NodeJS.Timeout;
}

/** A removal by session id that has not succeeded yet. */
interface PendingRemoval {
  connectionId: string;
  sessionId: string;
  inFlight: boolean;
  attempts: number;
  retryTimer?: NodeJS.Timeout;
}

const DEFAULTS = {
  requestTimeoutMs: 10_000,
  connectTimeoutMs: 5_000,
  reconnectBaseDelayMs: 250,
  reconnectMaxDelayMs: 30_000,
  heartbeatIntervalMs: 15_000,
  maxPayloadBytes: 64 * 1024 * 1024,
  maxFrameBytes: 4 * 1024 * 1024 + 64 * 1024,
};

/** Retry delays of failed session registrations and removals (with jitter, doubling per failure). */
const SESSION_RETRY_BASE_MS = 250;
const SESSION_RETRY_MAX_MS = 10_000;

/** The server URLs of the options, validated here so that a bad one fails the constructor instead of a later timer. */
function serverUrls(options: MessagePickupRepositoryClientOptions): string[] {
  const listed = options.urls ?? [];
  if (listed.length > 0 && options.url !== undefined) throw new Error('MessagePickupRepositoryClient takes `url` or `urls`, not both');
  const urls = listed.length > 0 ? listed : options.url !== undefined ? [options.url] : [];
  if (urls.length === 0) throw new Error('MessagePickupRepositoryClient needs `url` or `urls`');
  for (const url of urls) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`MessagePickupRepositoryClient: invalid server URL "${url}"`);
    }
    if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')
      throw new Error(`MessagePickupRepositoryClient: server URL "${url}" must use ws: or wss:`);
  }
  return urls;
}

function sessionKey(connectionId: string, sessionId: string): string {
  return JSON.stringify([connectionId, sessionId]);
}

/**
 * Whether a failed session call is final rather than worth retrying: the server refused it, the client is
 * closed, or the call could not even be sent (frame too large, params not serializable) and never will be.
 */
function isFinal(error: unknown): boolean {
  return (
    (error instanceof PickupRpcError && !error.retryable) ||
    error instanceof PickupClientClosedError ||
    error instanceof PickupFrameTooLargeError ||
    error instanceof TypeError
  );
}

/**
 * Client of the Message Pickup Repository server over one WebSocket: every JSON-RPC method, live
 * `messagesReceived` notifications, and a connection that survives server restarts and failovers.
 *
 * Live sessions registered through this client are recorded before the call and registered again with
 * `reclaim: true` after each reconnect (and retried with backoff while connected when a registration
 * fails), so a session is not lost to a timeout, and a session that meanwhile moved to another mediator is
 * not taken back. Failed removals by session id are retried the same way. The Credo adapters
 * (`Credo05MessagePickupRepository`, `Credo06QueueTransportRepository`) and the live-session wiring
 * helpers are built on it.
 *
 * @example
 * const client = new MessagePickupRepositoryClient({ url: 'ws://localhost:3100', token: process.env.MPR_TOKEN })
 * await client.connect()
 * const { messageId } = await client.addMessage({ connectionId, recipientDids: [did], payload })
 */
export class MessagePickupRepositoryClient {
  private readonly socket: ReconnectingRpcSocket;
  private readonly requestTimeoutMs: number;
  private readonly onError: (error: unknown, context: string) => void;
  /** The live sessions this client holds or is registering: connectionId → intent. */
  private readonly sessions = new Map<string, SessionIntent>();
  /** Removals by session id not yet confirmed, by `sessionKey`. */
  private readonly removals = new Map<string, PendingRemoval>();
  private readonly messageListeners = new Set<MessagesReceivedListener>();
  private readonly reclaimListeners = new Set<LiveSessionReclaimListener>();
  private closed = false;

  constructor(options: MessagePickupRepositoryClientOptions) {
    const urls = serverUrls(options);
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    const onError =
      options.onError ?? ((error: unknown, context: string) => console.error(`Message Pickup Repository client: ${context} failed`, error));
    this.onError = (error, context) => {
      // The sink is the last resort: if it throws too, the error goes to the console rather than into a
      // socket event handler, where it would end the process.
      try {
        onError(error, context);
      } catch (sinkError) {
        console.error(`Message Pickup Repository client: ${context} failed, and so did onError`, error, sinkError);
      }
    };
    this.socket = new ReconnectingRpcSocket({
      urls,
      token: options.token,
      ca: options.ca,
      requestTimeoutMs: this.requestTimeoutMs,
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      reconnectBaseDelayMs: options.reconnectBaseDelayMs ?? DEFAULTS.reconnectBaseDelayMs,
      reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? DEFAULTS.reconnectMaxDelayMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? DEFAULTS.heartbeatIntervalMs,
      maxPayloadBytes: options.maxPayloadBytes ?? DEFAULTS.maxPayloadBytes,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULTS.maxFrameBytes,
      onListenerError: this.onError,
    });
    // One listener for the client's whole life (not one per socket), so a reconnect cannot make a
    // notification reach a listener twice.
    this.socket.onNotification((notification) => {
      if (notification.method !== RpcNotification.MessagesReceived) return;
      // Listeners rely on the protocol's types: a notification that does not have them is reported, not passed on.
      if (!isMessagesReceivedParams(notification.params)) {
        this.onError(
          new Error('A messagesReceived notification without {connectionId, messages: [{id, receivedAt, encryptedMessage}]} was dropped'),
          'a messagesReceived notification',
        );
        return;
      }
      const params = notification.params;
      for (const listener of this.messageListeners) this.runListener(() => listener(params), 'a messagesReceived listener');
    });
    // Every open, the first included: a registration that failed while the client was still connecting
    // is registered here too.
    this.socket.onOpen(() => this.resumeSessionCalls());
  }

  /** Whether the WebSocket is open right now. */
  get connected(): boolean {
    return this.socket.connected;
  }

  /**
   * Starts connecting and resolves once connected. Rejects with `PickupTimeoutError` when no server
   * answered within `timeoutMs` (default: `requestTimeoutMs`); the client keeps trying in the background
   * either way, and calls made meanwhile wait for the connection. Calling it is optional: the first call
   * connects too.
   */
  connect(timeoutMs = this.requestTimeoutMs): Promise<void> {
    return this.socket.waitForOpen(timeoutMs);
  }

  /**
   * Queues a message. A `messageId` (a fresh UUID unless given) makes the add idempotent: it is the same
   * on every resend after a lost answer, so a resend cannot queue the message twice.
   */
  addMessage(params: AddMessageParams): Promise<AddMessageResult> {
    return this.socket.call(RpcMethod.AddMessage, { ...params, messageId: params.messageId ?? randomUUID() });
  }

  /**
   * Takes pending messages, oldest first; they are `sending` until `removeMessages` (unless
   * `deleteMessages`). Without `deleteMessages` the call is resent after a lost connection (a lost answer
   * leaves its messages `sending` until the server's redelivery timeout). With `deleteMessages: true` it
   * is not: a resend would take (and delete) the next batch, so a lost answer fails the call with
   * `PickupConnectionLostError` and that batch is gone. Prefer taking without deleting, then
   * `removeMessages` once the messages are in hand (the Credo adapters do).
   */
  takeFromQueue(params: TakeFromQueueParams): Promise<QueuedMessage[]> {
    return this.socket.call(RpcMethod.TakeFromQueue, params, { resendable: params.deleteMessages !== true });
  }

  /** Counts a connection's pending messages. */
  getAvailableMessageCount(params: GetAvailableMessageCountParams): Promise<number> {
    return this.socket.call(RpcMethod.GetAvailableMessageCount, params);
  }

  /** Acknowledges (deletes) delivered messages. Idempotent: resent after a lost connection. */
  removeMessages(params: RemoveMessagesParams): Promise<true> {
    return this.socket.call(RpcMethod.RemoveMessages, params);
  }

  /**
   * Deletes all of a connection's messages (for one recipient DID if given). Not resent after a lost
   * connection (a resend would also delete messages added since): a lost answer fails the call with
   * `PickupConnectionLostError`.
   */
  removeAllMessages(params: RemoveAllMessagesParams): Promise<true> {
    return this.socket.call(RpcMethod.RemoveAllMessages, params, { resendable: false });
  }

  /** A connection's queue statistics. */
  getQueueStats(params: GetQueueStatsParams): Promise<QueueStats> {
    return this.socket.call(RpcMethod.GetQueueStats, params);
  }

  /**
   * Makes this client the holder of the connection's live session: new messages for it arrive as
   * `messagesReceived` notifications. The session is recorded before the call, and re-registered with
   * `reclaim: true` after each reconnect. If the call's answer is lost with its socket, it is resent with
   * `reclaim: true` (the wallet may have moved to another mediator meanwhile). If the call fails (timeout,
   * retryable error), the rejection reaches the caller and the registration is retried in the background
   * with `reclaim: true`, with backoff while connected and at each reconnect, until the server accepts or
   * refuses it or `removeLiveSession` drops it; `onLiveSessionReclaim` listeners hear each outcome.
   */
  async addLiveSession(params: AddLiveSessionParams): Promise<boolean> {
    const previous = this.sessions.get(params.connectionId);
    if (previous) clearTimeout(previous.retryTimer);
    const intent: SessionIntent = { sessionId: params.sessionId, inFlight: false, attempts: 0 };
    this.sessions.set(params.connectionId, intent);
    // A removal of this same session still being retried would end what is registered now.
    this.dropRemoval(sessionKey(params.connectionId, params.sessionId));
    return this.register(params.connectionId, intent, params);
  }

  /** Whether any socket of the fleet holds the connection's live session. */
  getLiveSession(params: GetLiveSessionParams): Promise<boolean> {
    return this.socket.call(RpcMethod.GetLiveSession, params);
  }

  /**
   * Ends the connection's live session (only `sessionId`'s, if given); true if one was removed. The
   * session is forgotten at once, so a reconnect does not register it again. A removal by `sessionId` is
   * idempotent: it is resent after a lost connection, and when it fails (timeout, retryable error) it is
   * retried in the background with backoff while connected and at each reconnect until the server answers.
   * A removal without `sessionId` could end a newer session when repeated, so it is neither resent nor
   * retried (a lost answer fails it with `PickupConnectionLostError`).
   */
  removeLiveSession(params: RemoveLiveSessionParams): Promise<boolean> {
    const held = this.sessions.get(params.connectionId);
    if (held !== undefined && (params.sessionId === undefined || params.sessionId === held.sessionId)) {
      clearTimeout(held.retryTimer);
      this.sessions.delete(params.connectionId);
    }
    if (params.sessionId === undefined) return this.socket.call(RpcMethod.RemoveLiveSession, params, { resendable: false });
    const key = sessionKey(params.connectionId, params.sessionId);
    let removal = this.removals.get(key);
    if (!removal) {
      removal = { connectionId: params.connectionId, sessionId: params.sessionId, inFlight: false, attempts: 0 };
      this.removals.set(key, removal);
    }
    clearTimeout(removal.retryTimer);
    removal.retryTimer = undefined;
    return this.remove(key, removal);
  }

  /** `"pong"`: a round trip to the server. */
  ping(): Promise<'pong'> {
    return this.socket.call(RpcMethod.Ping, undefined);
  }

  /**
   * The live sessions this client holds or is registering (connectionId → sessionId), as re-registered
   * after a reconnect. A session is listed from the moment `addLiveSession` is called until it is removed,
   * or the server refuses (re-)registering it.
   */
  get liveSessions(): ReadonlyMap<string, string> {
    return new Map([...this.sessions].map(([connectionId, intent]) => [connectionId, intent.sessionId]));
  }

  /** Removals by session id that have not succeeded yet and are being retried (connectionId → sessionIds). */
  get pendingLiveSessionRemovals(): ReadonlyMap<string, readonly string[]> {
    const pending = new Map<string, string[]>();
    for (const removal of this.removals.values())
      pending.set(removal.connectionId, [...(pending.get(removal.connectionId) ?? []), removal.sessionId]);
    return pending;
  }

  /**
   * Listens to `messagesReceived` notifications (messages for connections whose live session this client
   * holds; they are `sending` until acknowledged with `removeMessages`). Returns the function that stops
   * listening. A listener that throws (or rejects) is reported to `onError`; the other listeners still run.
   */
  onMessagesReceived(listener: MessagesReceivedListener): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  /**
   * Listens to the outcome of each session re-registration (after a reconnect, or retrying a failed
   * registration). A reclaimed session does not get the messages that arrived while disconnected pushed:
   * take them (the Credo wiring helpers do, with `deliverMessagesFromQueue`). Returns the function that
   * stops listening. A listener that throws is reported to `onError`.
   */
  onLiveSessionReclaim(listener: LiveSessionReclaimListener): () => void {
    this.reclaimListeners.add(listener);
    return () => this.reclaimListeners.delete(listener);
  }

  /**
   * Listens to each loss of the connection (the client reconnects by itself). Returns the function that
   * stops listening. A listener that throws is reported to `onError`.
   */
  onDisconnect(listener: (code: number, reason: string) => void): () => void {
    return this.socket.onDisconnect(listener);
  }

  /**
   * Listens to each (re)connection; `reconnect` is false for the first. Returns the function that stops
   * listening. A listener that throws is reported to `onError`.
   */
  onConnect(listener: (reconnect: boolean) => void): () => void {
    return this.socket.onOpen(listener);
  }

  /**
   * Closes the connection cleanly and for good: waiting calls fail with `PickupClientClosedError`, the
   * server ends this client's live sessions (their unacknowledged messages become pending again), and
   * no registration or removal is retried any more.
   */
  close(): Promise<void> {
    this.closed = true;
    for (const intent of this.sessions.values()) clearTimeout(intent.retryTimer);
    for (const removal of this.removals.values()) clearTimeout(removal.retryTimer);
    this.sessions.clear();
    this.removals.clear();
    return this.socket.close();
  }

  /**
   * Sends a registration and settles the intent: held, forgotten (refused, or refused for good), or kept
   * and retried. The transport resends it with `reclaim: true` if its socket drops before the answer.
   */
  private async register(connectionId: string, intent: SessionIntent, params: AddLiveSessionParams): Promise<boolean> {
    intent.inFlight = true;
    try {
      const added = await this.socket.call<boolean>(RpcMethod.AddLiveSession, params, { resendParams: { ...params, reclaim: true } });
      if (this.sessions.get(connectionId) === intent) {
        intent.inFlight = false;
        intent.attempts = 0;
        if (!added) this.sessions.delete(connectionId);
      }
      return added;
    } catch (error) {
      if (this.sessions.get(connectionId) === intent) {
        intent.inFlight = false;
        if (isFinal(error)) this.sessions.delete(connectionId);
        else this.scheduleRegistration(connectionId, intent);
      }
      throw error;
    }
  }

  /** Registers a recorded intent again with `reclaim: true` and tells the reclaim listeners the outcome. */
  private reRegister(connectionId: string, intent: SessionIntent): void {
    clearTimeout(intent.retryTimer);
    intent.retryTimer = undefined;
    const { sessionId } = intent;
    this.register(connectionId, intent, { connectionId, sessionId, reclaim: true }).then(
      (reclaimed) => this.emitReclaim({ connectionId, sessionId, reclaimed }),
      (error: Error) => this.emitReclaim({ connectionId, sessionId, reclaimed: false, error }),
    );
  }

  private scheduleRegistration(connectionId: string, intent: SessionIntent): void {
    if (this.closed) return;
    clearTimeout(intent.retryTimer);
    intent.retryTimer = setTimeout(
      () => {
        intent.retryTimer = undefined;
        // While disconnected, the next open re-registers every recorded intent.
        if (this.sessions.get(connectionId) === intent && !intent.inFlight && this.socket.connected) this.reRegister(connectionId, intent);
      },
      backoffDelay(intent.attempts++, SESSION_RETRY_BASE_MS, SESSION_RETRY_MAX_MS),
    );
  }

  /** Sends a removal by session id; it stays pending (and retried) until the server answers. */
  private async remove(key: string, removal: PendingRemoval): Promise<boolean> {
    removal.inFlight = true;
    try {
      const removed = await this.socket.call<boolean>(RpcMethod.RemoveLiveSession, {
        connectionId: removal.connectionId,
        sessionId: removal.sessionId,
      });
      if (this.removals.get(key) === removal) this.removals.delete(key);
      return removed;
    } catch (error) {
      if (this.removals.get(key) === removal) {
        removal.inFlight = false;
        if (isFinal(error)) this.removals.delete(key);
        else this.scheduleRemoval(key, removal);
      }
      throw error;
    }
  }

  private retryRemoval(key: string, removal: PendingRemoval): void {
    clearTimeout(removal.retryTimer);
    removal.retryTimer = undefined;
    this.remove(key, removal).then(undefined, (error: unknown) => {
      // A retryable failure is already scheduled for another try by remove(); only a final one is news.
      if (isFinal(error) && !(error instanceof PickupClientClosedError))
        this.onError(error, `removeLiveSession of session ${removal.sessionId} of connection ${removal.connectionId} (retried)`);
    });
  }

  private scheduleRemoval(key: string, removal: PendingRemoval): void {
    if (this.closed) return;
    clearTimeout(removal.retryTimer);
    removal.retryTimer = setTimeout(
      () => {
        removal.retryTimer = undefined;
        if (this.removals.get(key) === removal && !removal.inFlight && this.socket.connected) this.retryRemoval(key, removal);
      },
      backoffDelay(removal.attempts++, SESSION_RETRY_BASE_MS, SESSION_RETRY_MAX_MS),
    );
  }

  private dropRemoval(key: string): void {
    const removal = this.removals.get(key);
    if (!removal) return;
    clearTimeout(removal.retryTimer);
    this.removals.delete(key);
  }

  /**
   * At each open: registers again, with `reclaim: true`, every recorded session that has no call under way
   * (the server ended them with the old socket; calls under way are resent with `reclaim: true` by the
   * transport), and sends the pending removals again.
   */
  private resumeSessionCalls(): void {
    for (const [connectionId, intent] of this.sessions) if (!intent.inFlight) this.reRegister(connectionId, intent);
    for (const [key, removal] of this.removals) if (!removal.inFlight) this.retryRemoval(key, removal);
  }

  private emitReclaim(event: LiveSessionReclaimEvent): void {
    for (const listener of this.reclaimListeners) this.runListener(() => listener(event), 'a live session reclaim listener');
  }

  /** Runs one user listener; its exception (or rejection) goes to `onError`, never into the socket's handlers. */
  private runListener(run: () => unknown, context: string): void {
    try {
      const result = run();
      if (result instanceof Promise) result.catch((error: unknown) => this.onError(error, context));
    } catch (error) {
      this.onError(error, context);
    }
  }
}

/** The params of `messagesReceived` as the protocol defines them. */
function isMessagesReceivedParams(params: unknown): params is MessagesReceivedParams {
  if (typeof params !== 'object' || params === null) return false;
  const { connectionId, messages } = params as Record<string, unknown>;
  if (typeof connectionId !== 'string' || !Array.isArray(messages)) return false;
  return messages.every(
    (message: unknown) =>
      typeof message === 'object' &&
      message !== null &&
      typeof (message as Record<string, unknown>).id === 'string' &&
      typeof (message as Record<string, unknown>).receivedAt === 'string' &&
      'encryptedMessage' in message,
  );
}
