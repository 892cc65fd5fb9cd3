import type { OpenRpcDocument } from './openrpc.types';

/** A DIDComm encrypted message as the mediator handed it over: any JSON object. */
export type EncryptedMessage = Record<string, unknown>;

/** A message waiting in a connection's queue, as returned by `takeFromQueue` and live notifications. */
export interface QueuedMessage {
  /** The message id: the `messageId` given to `addMessage`, or one the server generated. */
  id: string;
  /** When the server committed the message, as an ISO-8601 string. */
  receivedAt: string;
  /** Deep-equal to the `payload` given to `addMessage`. */
  encryptedMessage: EncryptedMessage;
}

/** Push token the mediator knows for the recipient's device. Unknown types are ignored by the server. */
export interface PushNotificationToken {
  type: string;
  token?: string;
  appId?: string;
}

/** Params of `addMessage`. */
export interface AddMessageParams {
  connectionId: string;
  /** At least one recipient DID (or key) the message is addressed to. */
  recipientDids: string[];
  payload: EncryptedMessage;
  pushNotificationToken?: PushNotificationToken;
  /** Idempotency key: adding the same id again for the same connection stores nothing new. */
  messageId?: string;
  /** Shorter life than the server's `MESSAGE_TTL_MS` (a longer one is capped at it). */
  ttlMs?: number;
}

/** Result of `addMessage`. */
export interface AddMessageResult {
  messageId: string;
}

/** Params of `takeFromQueue`. */
export interface TakeFromQueueParams {
  connectionId: string;
  recipientDid?: string;
  /** At most this many messages (default and maximum: the server's `MAX_TAKE_MESSAGES`). */
  limit?: number;
  /** Summed byte size of the returned `encryptedMessage`s stays within this (the oldest is returned alone if larger). */
  limitBytes?: number;
  /** Delete the taken messages in the same transaction instead of waiting for `removeMessages`. */
  deleteMessages?: boolean;
}

/** Params of `getAvailableMessageCount`. */
export interface GetAvailableMessageCountParams {
  connectionId: string;
  recipientDid?: string;
}

/** Params of `removeMessages`. */
export interface RemoveMessagesParams {
  connectionId: string;
  messageIds: string[];
}

/** Params of `removeAllMessages`. */
export interface RemoveAllMessagesParams {
  connectionId: string;
  recipientDid?: string;
}

/** Params of `addLiveSession`. */
export interface AddLiveSessionParams {
  connectionId: string;
  sessionId: string;
  /** Re-registration after a reconnect: succeed only if no session or the same session is held. */
  reclaim?: boolean;
}

/** Params of `getLiveSession`. */
export interface GetLiveSessionParams {
  connectionId: string;
}

/** Params of `removeLiveSession`. */
export interface RemoveLiveSessionParams {
  connectionId: string;
  /** Remove only if this session is the one held. */
  sessionId?: string;
}

/** Params of `getQueueStats`. */
export interface GetQueueStatsParams {
  connectionId: string;
}

/** A connection's queue, expired messages excluded. */
export interface QueueStats {
  /** Messages waiting to be taken. */
  pending: number;
  /** Messages taken or pushed and not yet acknowledged. */
  sending: number;
  /** Summed payload bytes of pending and sending messages. */
  bytes: number;
  /** `receivedAt` of the oldest pending or sending message (ISO-8601), or null when the queue is empty. */
  oldestReceivedAt: string | null;
}

/** Params of the `messagesReceived` notification. */
export interface MessagesReceivedParams {
  connectionId: string;
  messages: QueuedMessage[];
}

/** Params and result of each method, for typed clients. */
export interface RpcMethods {
  addMessage: { params: AddMessageParams; result: AddMessageResult };
  takeFromQueue: { params: TakeFromQueueParams; result: QueuedMessage[] };
  getAvailableMessageCount: { params: GetAvailableMessageCountParams; result: number };
  removeMessages: { params: RemoveMessagesParams; result: true };
  removeAllMessages: { params: RemoveAllMessagesParams; result: true };
  addLiveSession: { params: AddLiveSessionParams; result: boolean };
  getLiveSession: { params: GetLiveSessionParams; result: boolean };
  removeLiveSession: { params: RemoveLiveSessionParams; result: boolean };
  getQueueStats: { params: GetQueueStatsParams; result: QueueStats };
  ping: { params: undefined; result: 'pong' };
  'rpc.discover': { params: undefined; result: OpenRpcDocument };
  'rpc.on': { params: string[]; result: Record<string, 'ok'> };
  'rpc.off': { params: string[]; result: Record<string, 'ok'> };
}
