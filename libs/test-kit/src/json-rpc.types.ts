/** A JSON-RPC 2.0 error object as the server sends it. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: { retryable: boolean; field?: string; [key: string]: unknown };
}

/** Any JSON-RPC 2.0 frame: a request, a notification or a response. */
export interface JsonRpcMessage {
  jsonrpc: '2.0';
  id?: string | number | null;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: RpcErrorObject;
}

/** A notification from the server (a frame with a method and no id). */
export interface RpcNotification {
  method: string;
  params: unknown;
}

/** One message of a `messagesReceived` notification. */
export interface NotifiedMessage {
  id: string;
  receivedAt: string;
  encryptedMessage: unknown;
}

/** The params of a `messagesReceived` notification. */
export interface MessagesReceivedParams {
  connectionId: string;
  messages: NotifiedMessage[];
}
