/*
 * Method names and error codes of the server, copied from libs/protocol for a self-contained package
 * (test/client/protocol-parity.spec.ts checks they are equal to the protocol's).
 */

/** JSON-RPC method names served by the Message Pickup Repository server. */
export const RpcMethod = {
  AddMessage: 'addMessage',
  TakeFromQueue: 'takeFromQueue',
  GetAvailableMessageCount: 'getAvailableMessageCount',
  RemoveMessages: 'removeMessages',
  RemoveAllMessages: 'removeAllMessages',
  AddLiveSession: 'addLiveSession',
  GetLiveSession: 'getLiveSession',
  RemoveLiveSession: 'removeLiveSession',
  GetQueueStats: 'getQueueStats',
  Ping: 'ping',
  /** Subscription handshake of `rpc-websockets` clients. */
  Subscribe: 'rpc.on',
  /** Unsubscription handshake of `rpc-websockets` clients. */
  Unsubscribe: 'rpc.off',
} as const;

/** A JSON-RPC method name of the server. */
export type RpcMethodName = (typeof RpcMethod)[keyof typeof RpcMethod];

/** Notifications the server sends to clients (JSON-RPC requests without `id`). */
export const RpcNotification = {
  /** Messages for a connection whose live session the receiving socket holds. */
  MessagesReceived: 'messagesReceived',
} as const;

/** A notification name the server sends. */
export type RpcNotificationName = (typeof RpcNotification)[keyof typeof RpcNotification];

/** JSON-RPC error codes the server answers with (see the server README, "Errors"). */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** PostgreSQL could not be reached or failed the operation; nothing was changed. Retry later. */
  StorageUnavailable: -32000,
  /** The `payload` of `addMessage` is larger than `MAX_PAYLOAD_BYTES`. */
  PayloadTooLarge: -32001,
  /** The server is shutting down and takes no new requests; retry on another instance. */
  ShuttingDown: -32002,
  /** The connection's queue is full; nothing was stored. The recipient must fetch first. */
  QueueFull: -32003,
} as const;

/** A JSON-RPC error code value of the server. */
export type RpcErrorCodeValue = (typeof RpcErrorCode)[keyof typeof RpcErrorCode];

/** Whether a client may retry a call that failed with this code (the call changed nothing). */
export const RETRYABLE_ERROR_CODES: ReadonlySet<number> = new Set<number>([RpcErrorCode.StorageUnavailable, RpcErrorCode.ShuttingDown]);
