/** A call was made on, or was still waiting in, a client that `close()` has ended. */
export class PickupClientClosedError extends Error {
  /** The method of the call that was refused or abandoned. */
  readonly method: string;

  constructor(method: string) {
    super(`${method} failed: the Message Pickup Repository client is closed`);
    this.name = 'PickupClientClosedError';
    this.method = method;
  }
}
