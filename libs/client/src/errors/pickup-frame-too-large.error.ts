/**
 * A call was refused before it was sent: its JSON-RPC frame is larger than the client's `maxFrameBytes`
 * (which should match the server's `MAX_FRAME_BYTES`). The server would close the socket with 1009 for it,
 * so it is never sent; nothing changed on the server.
 */
export class PickupFrameTooLargeError extends Error {
  /** The method of the refused call. */
  readonly method: string;
  /** Size of the call's frame in UTF-8 bytes. */
  readonly frameBytes: number;
  /** The client's `maxFrameBytes`. */
  readonly maxFrameBytes: number;

  constructor(method: string, frameBytes: number, maxFrameBytes: number) {
    super(
      `${method} refused: its frame is ${frameBytes} bytes, more than maxFrameBytes (${maxFrameBytes}); the server would close the connection for it`,
    );
    this.name = 'PickupFrameTooLargeError';
    this.method = method;
    this.frameBytes = frameBytes;
    this.maxFrameBytes = maxFrameBytes;
  }
}
