/** Why a call got no answer at all: its socket closed (or was never open), the time ran out, or the connect failed. */
export type RpcTransportFailure = 'socket-closed' | 'timeout' | 'connect-failed';

/**
 * Thrown by a call (or a connect) that got no answer from the server. A load generator counts these by `code`
 * beside the server's error codes; each is worth retrying on a new socket, so `retryable` is always true.
 */
export class RpcTransportError extends Error {
  readonly retryable = true;

  constructor(
    readonly code: RpcTransportFailure,
    message: string,
  ) {
    super(message);
  }
}
