import { WebSocket } from 'ws';

export interface RpcErrorObject {
  code: number;
  message: string;
  data?: { retryable?: boolean; field?: string };
}

export interface NotifiedMessage {
  id: string;
  receivedAt: string;
  encryptedMessage: unknown;
}

/**
 * Why a call did not return a result: the server's error object, or a transport failure (the socket closed
 * or was never open, or no answer in time). The load generator counts these by `code`.
 */
export class FaultCallError extends Error {
  constructor(
    readonly code: string,
    readonly retryable: boolean,
    message: string,
  ) {
    super(message);
  }

  static fromRpc(error: RpcErrorObject): FaultCallError {
    return new FaultCallError(String(error.code), error.data?.retryable === true, `${error.code}: ${error.message}`);
  }
}

/**
 * A JSON-RPC client for the fault suite. Unlike test/support's RpcTestClient it fails every pending call as
 * soon as its socket closes (a killed server never answers, and waiting for a per-call timeout would blur
 * the recovery times we measure), hands notifications to a callback as they arrive, and can stop reading its
 * socket (the slow-consumer fault).
 */
export class FaultRpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: FaultCallError) => void; timer: NodeJS.Timeout }>();
  private closeListeners: ((code: number) => void)[] = [];
  closeCode: number | undefined;
  /** Bytes of frames received (to report what a paused consumer got after resuming). */
  receivedBytes = 0;

  private constructor(
    readonly socket: WebSocket,
    readonly url: string,
    private readonly onNotification: (connectionId: string, messages: NotifiedMessage[]) => void,
  ) {
    socket.on('message', (data: Buffer) => {
      this.receivedBytes += data.length;
      const frame = JSON.parse(data.toString('utf8')) as {
        id?: number;
        method?: string;
        params?: { connectionId: string; messages: NotifiedMessage[] };
        result?: unknown;
        error?: RpcErrorObject;
      };
      if (frame.method === 'messagesReceived' && frame.params) {
        this.onNotification(frame.params.connectionId, frame.params.messages);
        return;
      }
      if (typeof frame.id !== 'number') throw new Error(`unexpected frame from the server: ${data.toString('utf8').slice(0, 300)}`);
      const waiter = this.pending.get(frame.id);
      if (!waiter) return; // answered after its timeout
      this.pending.delete(frame.id);
      clearTimeout(waiter.timer);
      if (frame.error) waiter.reject(FaultCallError.fromRpc(frame.error));
      else waiter.resolve(frame.result);
    });
    // A reset by a killed server surfaces as 'error' then 'close'; the close is what we act on.
    socket.on('error', () => undefined);
    socket.on('close', (code) => {
      this.closeCode = code;
      for (const [id, waiter] of this.pending) {
        clearTimeout(waiter.timer);
        this.pending.delete(id);
        waiter.reject(new FaultCallError('socket-closed', true, `socket closed (${code}) before the answer`));
      }
      const listeners = this.closeListeners;
      this.closeListeners = [];
      for (const listener of listeners) listener(code);
    });
  }

  static connect(
    url: string,
    onNotification: (connectionId: string, messages: NotifiedMessage[]) => void = () => undefined,
    timeoutMs = 5_000,
  ): Promise<FaultRpcClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { handshakeTimeout: timeoutMs, maxPayload: 256 * 1024 * 1024 });
      socket.once('open', () => resolve(new FaultRpcClient(socket, url, onNotification)));
      socket.once('error', (error) => reject(new FaultCallError('connect-failed', true, `connect to ${url}: ${error.message}`)));
      socket.once('unexpected-response', (_request, response) => reject(new FaultCallError('connect-failed', true, `HTTP ${response.statusCode}`)));
    });
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  onClose(listener: (code: number) => void): void {
    if (this.closeCode !== undefined) listener(this.closeCode);
    else this.closeListeners.push(listener);
  }

  call<T = unknown>(method: string, params?: unknown, timeoutMs = 10_000): Promise<T> {
    if (!this.open) return Promise.reject(new FaultCallError('socket-closed', true, `socket not open for ${method}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new FaultCallError('timeout', true, `no answer to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, timer });
      this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
    });
  }

  /** Stops reading the socket: the server's writes pile up in the kernel buffers, then in the server. */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /** Closes, or terminates when the server does not complete the close handshake in time (it may be dead). */
  async closeQuietly(timeoutMs = 2_000): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.socket.terminate();
        resolve();
      }, timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.close();
    });
  }
}
