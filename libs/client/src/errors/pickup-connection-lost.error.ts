/**
 * The connection dropped while a call was in flight, and the call is not sent again because repeating it
 * is not safe: the server may already have executed it (`takeFromQueue` with `deleteMessages`,
 * `removeAllMessages`, `removeLiveSession` without `sessionId`), or the server closed the socket with code
 * 1009 because a frame was too big (sending it again would only repeat that).
 *
 * Whether the server executed the call is unknown. `retryable` says whether the caller may send it again
 * once it has decided that a repeat is acceptable (true after a plain connection loss, false after 1009).
 */
export class PickupConnectionLostError extends Error {
  /** The method of the call that was lost. */
  readonly method: string;
  /** The WebSocket close code of the lost connection (1006 when it dropped without a close frame). */
  readonly closeCode: number;
  /** Whether sending the call again may succeed; see the class description for what a repeat may do. */
  readonly retryable: boolean;

  constructor(method: string, closeCode: number) {
    const tooBig = closeCode === 1009;
    super(
      tooBig
        ? `${method} failed: the connection closed with code 1009 (message too big) while the call was in flight; ` +
            `a frame exceeded the server's MAX_FRAME_BYTES or this client's maxPayloadBytes, so the call is not sent again`
        : `${method} failed: the connection to the Message Pickup Repository was lost before the answer arrived ` +
            `(close code ${closeCode}); the server may have executed it, and repeating it is not safe, so it was not sent again`,
    );
    this.name = 'PickupConnectionLostError';
    this.method = method;
    this.closeCode = closeCode;
    this.retryable = !tooBig;
  }
}
