import { WebSocket } from 'ws';

export interface JsonRpcMessage {
  jsonrpc: '2.0';
  id?: string | number | null;
  method?: string;
  params?: unknown;
  result?: unknown;
  error?: { code: number; message: string; data?: { retryable: boolean; field?: string } };
}

/** Thrown by `call` when the server answers with an error object. */
export class RpcCallError extends Error {
  constructor(readonly error: NonNullable<JsonRpcMessage['error']>) {
    super(`${error.code}: ${error.message}`);
  }
}

/**
 * A deliberately plain JSON-RPC client for tests: it sends exactly what it is told, so tests can also send
 * malformed frames, and it records every frame the server sends.
 */
export class RpcTestClient {
  private nextId = 1;
  private readonly pending = new Map<string | number, (message: JsonRpcMessage) => void>();
  /** Every frame received that is not a reply to `call`, parsed when possible. */
  readonly received: unknown[] = [];
  private waiters: (() => void)[] = [];
  closeCode: number | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const text = data.toString();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // keep the raw text
      }
      const single = parsed as JsonRpcMessage;
      if (single && typeof single === 'object' && !Array.isArray(single) && single.id !== undefined && single.id !== null && this.pending.has(single.id)) {
        const resolve = this.pending.get(single.id)!;
        this.pending.delete(single.id);
        resolve(single);
      } else {
        this.received.push(parsed);
      }
      const waiters = this.waiters;
      this.waiters = [];
      waiters.forEach((wake) => wake());
    });
    socket.on('close', (code) => {
      this.closeCode = code;
      const waiters = this.waiters;
      this.waiters = [];
      waiters.forEach((wake) => wake());
    });
  }

  static connect(url: string, options: { headers?: Record<string, string>; maxPayload?: number } = {}): Promise<RpcTestClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers: options.headers, maxPayload: options.maxPayload ?? 256 * 1024 * 1024 });
      socket.once('open', () => resolve(new RpcTestClient(socket)));
      socket.once('error', reject);
      socket.once('unexpected-response', (_request, response) => reject(new Error(`HTTP ${response.statusCode}`)));
    });
  }

  /** Sends a request and resolves with the whole response message. */
  request(method: string, params?: unknown, timeoutMs = 10_000): Promise<JsonRpcMessage> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no response to ${method} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, (message) => {
        clearTimeout(timer);
        resolve(message);
      });
      this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }));
    });
  }

  /** Sends a request and resolves with its result, or rejects with an `RpcCallError`. */
  async call<T = unknown>(method: string, params?: unknown): Promise<T> {
    const response = await this.request(method, params);
    if (response.error) throw new RpcCallError(response.error);
    return response.result as T;
  }

  /** Sends raw text and resolves with the next frame that is not a reply to `call`. */
  async sendRaw(text: string | Buffer, timeoutMs = 10_000): Promise<unknown> {
    const before = this.received.length;
    this.socket.send(text);
    await this.waitFor(() => this.received.length > before, timeoutMs, 'a reply to a raw frame');
    return this.received.splice(before, 1)[0];
  }

  /** Resolves once `condition` holds, re-checked at each frame received; rejects after `timeoutMs`. */
  async waitFor(condition: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** `messagesReceived` notifications received so far. */
  notifications(): { connectionId: string; messages: { id: string; receivedAt: string; encryptedMessage: unknown }[] }[] {
    return this.received
      .filter((frame): frame is JsonRpcMessage => typeof frame === 'object' && frame !== null && (frame as JsonRpcMessage).method === 'messagesReceived')
      .map((frame) => frame.params as { connectionId: string; messages: { id: string; receivedAt: string; encryptedMessage: unknown }[] });
  }

  notifiedIds(connectionId?: string): string[] {
    return this.notifications()
      .filter((n) => connectionId === undefined || n.connectionId === connectionId)
      .flatMap((n) => n.messages.map((m) => m.id));
  }

  /** Closes, or terminates the socket after `timeoutMs` (its server may be dead and never answer the close). */
  async closeQuietly(timeoutMs = 2_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const terminated = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.socket.terminate();
        resolve();
      }, timeoutMs);
    });
    try {
      await Promise.race([this.close().catch(() => undefined), terminated]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
  }
}
