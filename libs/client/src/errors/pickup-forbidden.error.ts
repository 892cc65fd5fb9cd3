import type { ForbiddenErrorData, TokenRole } from '@didcomm-mpr/protocol';
import { PickupRpcError } from './pickup-rpc.error';

/**
 * The server refused the call because the client's token may not make it (JSON-RPC error -32005): a `monitor`
 * token may only call `ping`, `getAvailableMessageCount`, `getQueueStats` and `getLiveSession`. Nothing changed on
 * the server, and sending the call again cannot succeed: the client needs a `mediator` token (the operator's tokens
 * file decides). `retryable` is false.
 */
export class PickupForbiddenError extends PickupRpcError {
  /** The role of the token the client connected with. */
  readonly role: TokenRole | undefined;

  constructor(method: string, code: number, message: string, data?: ForbiddenErrorData) {
    super(method, code, message, data);
    this.name = 'PickupForbiddenError';
    this.role = data?.role;
    this.message = `${method} refused: the client's token has the role "${this.role ?? 'unknown'}", which may not call ${method} (JSON-RPC error ${code}); connect with a mediator token`;
  }
}
