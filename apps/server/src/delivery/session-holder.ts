/** A client socket that can hold live sessions; implemented by the RPC layer's connection. */
export interface SessionHolder {
  /** Unique per socket, for logs. */
  readonly id: string;
  readonly isOpen: boolean;
  /** Bytes queued on the socket but not yet written to the network. */
  readonly bufferedAmount: number;
  /** Sends one text frame; resolves when it was handed to the network, rejects if the socket failed. */
  send(frame: string): Promise<void>;
}
