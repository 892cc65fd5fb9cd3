/**
 * JSON-RPC error codes the server answers with (see the server README, "Errors"). The -327xx/-326xx codes
 * are the specification's; the server's own codes are in -32000..-32099 and never change meaning once
 * published. Every error carries `data.retryable`.
 */
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
  /**
   * The connection's queue holds `MAX_QUEUE_MESSAGES` messages or `MAX_QUEUE_BYTES` bytes already (or this
   * message would pass them); nothing was stored. Not retryable as such: the recipient must fetch first.
   */
  QueueFull: -32003,
} as const;

/** A JSON-RPC error code value of the server. */
export type RpcErrorCodeValue = (typeof RpcErrorCode)[keyof typeof RpcErrorCode];

/** Whether a client may retry a call that failed with this code (the call changed nothing). */
export const RETRYABLE_ERROR_CODES: ReadonlySet<number> = new Set<number>([
  RpcErrorCode.StorageUnavailable,
  RpcErrorCode.ShuttingDown,
]);

/** The `data` member of every error object the server sends. */
export interface RpcErrorData {
  retryable: boolean;
  /** For invalid params: the offending parameter's name. */
  field?: string;
  [key: string]: unknown;
}

/** A JSON-RPC error object as the server sends it. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: RpcErrorData;
}
