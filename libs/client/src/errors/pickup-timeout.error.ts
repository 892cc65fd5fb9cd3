/**
 * A call got no answer within its timeout: either the server did not answer in time, or no connection
 * could be (re-)established in time. The call may or may not have been executed by the server. Repeating
 * it is safe for adds (they carry an idempotency `messageId`), removals by id, reads and live-session
 * registrations; it is not for `takeFromQueue` with `deleteMessages` (a repeat takes the next batch),
 * `removeAllMessages` (a repeat also deletes what was added since) and `removeLiveSession` without
 * `sessionId` (a repeat may end a newer session).
 */
export class PickupTimeoutError extends Error {
  /** The method of the call that timed out. */
  readonly method: string;
  /** The timeout that elapsed, in milliseconds. */
  readonly timeoutMs: number;
  /** Whether the client was connected when the time ran out (false: it was waiting for a connection). */
  readonly connected: boolean;

  constructor(method: string, timeoutMs: number, connected: boolean, lastConnectError?: string) {
    const reason = connected
      ? 'no answer from the server'
      : `no connection to the Message Pickup Repository${lastConnectError ? ` (last connection error: ${lastConnectError})` : ''}`;
    super(`${method} timed out after ${timeoutMs} ms: ${reason}`);
    this.name = 'PickupTimeoutError';
    this.method = method;
    this.timeoutMs = timeoutMs;
    this.connected = connected;
  }
}
