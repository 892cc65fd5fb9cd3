import type { RpcErrorData } from '@didcomm-mpr/protocol';

/**
 * The server answered a call with a JSON-RPC error. `code` and `message` are the server's (see
 * `RpcErrorCode`); `retryable` says whether sending the same call again may succeed.
 */
export class PickupRpcError extends Error {
  /** The JSON-RPC error code, e.g. -32602 (invalid params) or -32003 (queue full). */
  readonly code: number;
  /** The server's `data` member (`retryable`, and `field` for invalid params). */
  readonly data: RpcErrorData | undefined;
  /** The method of the failed call. */
  readonly method: string;
  /** The server's error message, without the method prefix (for callers matching on it). */
  readonly rpcMessage: string;

  constructor(method: string, code: number, message: string, data?: RpcErrorData) {
    super(`${method} failed: ${message} (JSON-RPC error ${code})`);
    this.name = 'PickupRpcError';
    this.method = method;
    this.code = code;
    this.data = data;
    this.rpcMessage = message;
  }

  /** Whether the server said the call changed nothing and may be sent again. */
  get retryable(): boolean {
    return this.data?.retryable === true;
  }
}
