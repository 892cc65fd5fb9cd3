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
  /**
   * The token's `maxRequestsPerSecond` is used up on this server instance; nothing was run. Retry after
   * `data.retryAfterMs` (see `RateLimitedErrorData`). The socket stays open.
   */
  RateLimited: -32004,
  /**
   * The token's role does not allow this method (a `monitor` token calling a method that changes something);
   * nothing was run. `data.method` and `data.role` say which (see `ForbiddenErrorData`). Not retryable.
   */
  Forbidden: -32005,
} as const;

/** A JSON-RPC error code value of the server. */
export type RpcErrorCodeValue = (typeof RpcErrorCode)[keyof typeof RpcErrorCode];

/** Whether a client may retry a call that failed with this code (the call changed nothing). */
export const RETRYABLE_ERROR_CODES: ReadonlySet<number> = new Set<number>([
  RpcErrorCode.StorageUnavailable,
  RpcErrorCode.ShuttingDown,
  RpcErrorCode.RateLimited,
]);

/**
 * What a bearer token may do, set per token by the server's operator. `mediator`: every method, on the
 * connections of the token's tenant. `monitor`: `ping`, `getAvailableMessageCount`, `getQueueStats` and
 * `getLiveSession` only.
 */
export type TokenRole = 'mediator' | 'monitor';

/** The `data` member of every error object the server sends. */
export interface RpcErrorData {
  retryable: boolean;
  /** For invalid params: the offending parameter's name. */
  field?: string;
  [key: string]: unknown;
}

/** The `data` of a -32004 "Rate limited" error. */
export interface RateLimitedErrorData extends RpcErrorData {
  retryable: true;
  /** How long to wait before the call can succeed, in milliseconds. */
  retryAfterMs: number;
}

/** The `data` of a -32005 "Forbidden" error. */
export interface ForbiddenErrorData extends RpcErrorData {
  retryable: false;
  /** The method that was refused. */
  method: string;
  /** The role of the token the socket was opened with. */
  role: TokenRole;
}

/** A JSON-RPC error object as the server sends it. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: RpcErrorData;
}
