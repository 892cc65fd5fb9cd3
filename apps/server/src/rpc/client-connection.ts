import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import { SessionHolder } from '../live-session';
import { AccessGrant } from './access-grant';

/** One mediator's WebSocket: the grant of the token it was opened with, its frames, and its liveness for the heartbeat. */
export class ClientConnection implements SessionHolder {
  readonly id = randomUUID();
  /** Pings sent since the last pong; the heartbeat ends the socket at two. */
  missedPongs = 0;
  /** Frames received whose handling has not finished (graceful shutdown waits for zero). */
  inFlight = 0;

  constructor(
    readonly socket: WebSocket,
    readonly remoteAddress: string,
    /** Decides the tenant of every connection its calls name, what it may call, and its rate. */
    readonly grant: AccessGrant,
  ) {}

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  send(frame: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.isOpen) {
        reject(new Error('socket is not open'));
        return;
      }
      this.socket.send(frame, (error) => (error ? reject(error) : resolve()));
    });
  }
}
