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
  /** The server's OpenRPC document (the OpenRPC service-discovery convention). */
  Discover: 'rpc.discover',
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
