import type { RpcErrorObject } from './json-rpc.types';

/** Thrown by a call when the server answers with a JSON-RPC error object; `error` is that object as sent. */
export class RpcCallError extends Error {
  constructor(readonly error: RpcErrorObject) {
    super(`${error.code}: ${error.message}`);
  }

  get code(): number {
    return this.error.code;
  }

  /** Whether the server says the same call may succeed later (its `data.retryable`). */
  get retryable(): boolean {
    return this.error.data?.retryable === true;
  }
}
