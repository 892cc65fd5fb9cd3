export enum QueueExceptionCode {
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  QueueFull = 'QUEUE_FULL',
}

/** A queue operation refused for a reason of the request itself; nothing was stored or changed. */
export class QueueException extends Error {
  constructor(
    readonly code: QueueExceptionCode,
    message: string,
  ) {
    super(message);
    this.name = 'QueueException';
  }
}
