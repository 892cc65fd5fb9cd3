import WebSocket from 'ws';

/** A JSON-RPC error object received from the server. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(`JSON-RPC error ${code}: ${message}`);
  }
}

export interface Notification {
  method: string;
  params: unknown;
}

interface PendingCall {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  deadline: number;
}

const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/**
 * A lean JSON-RPC 2.0 client over one WebSocket, for load generation: params can be passed as pre-serialised
 * JSON text (no per-call stringify of the payload), call timeouts are checked by one sweep timer instead of a
 * timer per call, and server notifications go to one handler.
 */
export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, PendingCall>();
  private readonly sweeper: NodeJS.Timeout;
  private closedError: Error | undefined;
  onNotification: ((notification: Notification, receivedAt: number) => void) | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: WebSocket.RawData) => this.onFrame(data));
    socket.on('close', (code, reason) => this.failAll(new Error(`socket closed (${code} ${reason.toString()})`)));
    socket.on('error', (error) => this.failAll(error));
    this.sweeper = setInterval(() => this.sweep(), 500);
    this.sweeper.unref();
  }

  static connect(url: string, timeoutMs = 10_000): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs, maxPayload: 256 * 1024 * 1024 });
      const fail = (error: Error) => {
        socket.removeAllListeners();
        socket.on('error', () => undefined);
        socket.terminate();
        reject(error);
      };
      socket.once('error', fail);
      socket.once('unexpected-response', (_request, response) => fail(new Error(`WebSocket upgrade refused: HTTP ${response.statusCode}`)));
      socket.once('open', () => {
        socket.removeListener('error', fail);
        resolve(new RpcClient(socket));
      });
    });
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Calls `method` with params given as an object (serialised here). */
  call<T = unknown>(method: string, params?: unknown, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<T> {
    return this.callRaw<T>(method, params === undefined ? undefined : JSON.stringify(params), timeoutMs);
  }

  /** Calls `method` with params given as JSON text, spliced into the frame as is. */
  callRaw<T = unknown>(method: string, paramsJson: string | undefined, timeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<T> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    const frame =
      paramsJson === undefined
        ? `{"jsonrpc":"2.0","id":${id},"method":"${method}"}`
        : `{"jsonrpc":"2.0","id":${id},"method":"${method}","params":${paramsJson}}`;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (result: unknown) => void, reject, deadline: Date.now() + timeoutMs });
      this.socket.send(frame, (error) => {
        if (!error) return;
        const call = this.pending.get(id);
        if (!call) return;
        this.pending.delete(id);
        call.reject(error);
      });
    });
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.terminate();
        resolve();
      }, 2_000);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.close(1000);
    });
  }

  terminate(): void {
    clearInterval(this.sweeper);
    this.socket.terminate();
  }

  private onFrame(data: WebSocket.RawData): void {
    const receivedAt = performance.now();
    let message: unknown;
    try {
      message = JSON.parse(data.toString());
    } catch {
      return;
    }
    for (const entry of Array.isArray(message) ? message : [message]) {
      if (typeof entry !== 'object' || entry === null) continue;
      const m = entry as { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: { code: number; message: string; data?: unknown } };
      if (typeof m.method === 'string' && m.id === undefined) {
        this.onNotification?.({ method: m.method, params: m.params }, receivedAt);
        continue;
      }
      if (typeof m.id !== 'number') continue;
      const call = this.pending.get(m.id);
      if (!call) continue;
      this.pending.delete(m.id);
      if (m.error) call.reject(new RpcError(m.error.code, m.error.message, m.error.data));
      else call.resolve(m.result);
    }
  }

  private sweep(): void {
    const now = Date.now();
    for (const [id, call] of this.pending) {
      if (call.deadline <= now) {
        this.pending.delete(id);
        call.reject(new Error(`call ${id} timed out`));
      }
    }
  }

  private failAll(error: Error): void {
    this.closedError ??= error;
    clearInterval(this.sweeper);
    for (const call of this.pending.values()) call.reject(error);
    this.pending.clear();
  }
}

/** Serialises a string as a JSON string literal (ids and DIDs are plain ASCII here, but stay correct anyway). */
export const jsonString = (value: string): string => JSON.stringify(value);
