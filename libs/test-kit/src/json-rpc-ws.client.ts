import { RawData, WebSocket } from 'ws';
import type { JsonRpcMessage, MessagesReceivedParams, RpcNotification } from './json-rpc.types';
import { RpcCallError } from './rpc-call.error';
import { RpcTransportError } from './rpc-transport.error';

export type NotificationHandler = (notification: RpcNotification, receivedAt: number) => void;

export interface JsonRpcWsClientOptions {
  /** Headers of the upgrade request (e.g. Authorization). */
  headers?: Record<string, string>;
  /** For `wss://`: the CA certificate(s) (PEM) to trust instead of the system's, e.g. a test's self-signed one. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** The largest frame accepted from the server: by default far above any frame limit under test. */
  maxPayload?: number;
  /** The upgrade must complete within this. */
  handshakeTimeoutMs?: number;
  /** How long a call waits for its answer unless the call says otherwise. */
  callTimeoutMs?: number;
  /**
   * Keep every frame that is not the answer to a call in `received` (the default), for tests that read
   * notifications and the replies to raw frames. Load generators turn it off: a recording client's memory
   * grows with every notification.
   */
  record?: boolean;
  /** Called with each notification as it arrives (see `onNotification`). */
  onNotification?: NotificationHandler;
}

interface PendingCall {
  method: string;
  timeoutMs: number;
  /** Date.now() after which the sweep fails the call. */
  deadline: number;
  resolve: (response: JsonRpcMessage) => void;
  reject: (error: Error) => void;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_PAYLOAD = 256 * 1024 * 1024;
/** How often call deadlines are checked: a timeout fires at most this late. */
const SWEEP_INTERVAL_MS = 100;

/**
 * The JSON-RPC 2.0 client over one WebSocket that tests and the benchmark use to reach the server.
 *
 * - It sends exactly what it is told (`sendRaw`), so tests can also send malformed frames, and it records every
 *   frame the server sends that is not the answer to one of its calls (`received`, unless `record: false`).
 * - `call` resolves with the result or rejects with an `RpcCallError` carrying the server's error object;
 *   `request` resolves with the whole response, error or not.
 * - When the socket closes every pending call fails at once with an `RpcTransportError`: a killed server never
 *   answers, and waiting for each call's timeout would blur the recovery times the fault suite measures.
 * - Notifications also go to `onNotification` as they arrive, with their arrival time (latency measurements).
 * - Reading can be paused (`pauseReading`), so a test can play a consumer too slow to read its socket.
 * - For load generation, `callJson` takes params already serialised (no stringify of the payload per call), and
 *   call deadlines are checked by one sweep timer for all clients of the process instead of a timer per call.
 */
export class JsonRpcWsClient {
  /** Clients with calls waiting, whose deadlines the one sweep timer checks. */
  private static readonly waiting = new Set<JsonRpcWsClient>();
  private static sweeper: NodeJS.Timeout | undefined;

  private nextId = 1;
  private readonly pending = new Map<string | number, PendingCall>();
  private waiters: (() => void)[] = [];
  private closeListeners: ((code: number) => void)[] = [];
  private readonly record: boolean;
  private readonly callTimeoutMs: number;
  /** Every frame received that is not the answer to a call, parsed when possible (when recording). */
  readonly received: unknown[] = [];
  /** Each notification as it arrives, with performance.now() at its arrival; may be replaced at any time. */
  onNotification: NotificationHandler | undefined;
  /** The close code, once the socket has closed. */
  closeCode: number | undefined;

  private constructor(
    readonly socket: WebSocket,
    options: JsonRpcWsClientOptions,
  ) {
    this.record = options.record ?? true;
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.onNotification = options.onNotification;
    socket.on('message', (data) => this.onFrame(data));
    // A reset by a killed server surfaces as 'error' then 'close'; the close is what the client acts on.
    socket.on('error', () => undefined);
    socket.on('close', (code) => this.onClosed(code));
  }

  static connect(url: string, options: JsonRpcWsClientOptions = {}): Promise<JsonRpcWsClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, {
        headers: options.headers,
        ca: options.ca,
        maxPayload: options.maxPayload ?? DEFAULT_MAX_PAYLOAD,
        handshakeTimeout: options.handshakeTimeoutMs ?? DEFAULT_TIMEOUT_MS,
        // The server never compresses; not offering it keeps the upgrade as small as a mediator's.
        perMessageDeflate: false,
      });
      const fail = (message: string) => {
        socket.removeAllListeners();
        socket.on('error', () => undefined);
        socket.terminate();
        reject(new RpcTransportError('connect-failed', message));
      };
      socket.once('error', (error) => fail(`connect to ${url}: ${error.message}`));
      socket.once('unexpected-response', (_request, response) => {
        response.resume();
        fail(`HTTP ${response.statusCode}`);
      });
      socket.once('open', () => {
        socket.removeAllListeners();
        resolve(new JsonRpcWsClient(socket, options));
      });
    });
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Calls sent and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Sends a request and resolves with the whole response message, error or result. */
  request(method: string, params?: unknown, timeoutMs = this.callTimeoutMs): Promise<JsonRpcMessage> {
    return this.requestJson(method, params === undefined ? undefined : JSON.stringify(params), timeoutMs);
  }

  /** Sends a request and resolves with its result, or rejects with an `RpcCallError` (or `RpcTransportError`). */
  call<T = unknown>(method: string, params?: unknown, timeoutMs = this.callTimeoutMs): Promise<T> {
    return this.request(method, params, timeoutMs).then((response) => resultOf<T>(response));
  }

  /** `call` with params given as JSON text, spliced into the frame as is. */
  callJson<T = unknown>(method: string, paramsJson: string | undefined, timeoutMs = this.callTimeoutMs): Promise<T> {
    return this.requestJson(method, paramsJson, timeoutMs).then((response) => resultOf<T>(response));
  }

  /** Sends raw text (or a binary frame) and resolves with the next frame that is not the answer to a call. */
  async sendRaw(data: string | Buffer, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<unknown> {
    if (!this.record) throw new Error('sendRaw reads the recorded frames: connect with record: true');
    const before = this.received.length;
    this.socket.send(data);
    await this.waitFor(() => this.received.length > before, timeoutMs, 'a reply to a raw frame');
    return this.received.splice(before, 1)[0];
  }

  /** Resolves once `condition` holds, re-checked at each frame received; rejects after `timeoutMs`. */
  async waitFor(condition: () => boolean, timeoutMs = DEFAULT_TIMEOUT_MS, what = 'condition'): Promise<void> {
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

  /** `messagesReceived` notifications recorded so far. */
  notifications(): MessagesReceivedParams[] {
    return this.received
      .filter(
        (frame): frame is JsonRpcMessage =>
          typeof frame === 'object' && frame !== null && (frame as JsonRpcMessage).method === 'messagesReceived',
      )
      .map((frame) => frame.params as MessagesReceivedParams);
  }

  /** Ids of the messages notified so far, for one connection or all. */
  notifiedIds(connectionId?: string): string[] {
    return this.notifications()
      .filter((n) => connectionId === undefined || n.connectionId === connectionId)
      .flatMap((n) => n.messages.map((m) => m.id));
  }

  /** Calls `listener` with the close code once the socket has closed (at once if it has). */
  onClose(listener: (code: number) => void): void {
    if (this.closeCode !== undefined) listener(this.closeCode);
    else this.closeListeners.push(listener);
  }

  /** Stops reading the socket: the server's writes pile up in the kernel buffers, then in the server. */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /** Closes and waits for the close handshake (from a server that is alive). */
  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.close();
    });
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
      await Promise.race([this.close(), terminated]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops the connection without a close handshake. */
  terminate(): void {
    this.socket.terminate();
  }

  private requestJson(method: string, paramsJson: string | undefined, timeoutMs: number): Promise<JsonRpcMessage> {
    if (!this.open) return Promise.reject(new RpcTransportError('socket-closed', `socket not open for ${method}`));
    const id = this.nextId++;
    const frame = `{"jsonrpc":"2.0","id":${id},"method":${JSON.stringify(method)}${paramsJson === undefined ? '' : `,"params":${paramsJson}`}}`;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { method, timeoutMs, deadline: Date.now() + timeoutMs, resolve, reject });
      JsonRpcWsClient.watch(this);
      this.socket.send(frame, (error) => {
        if (!error || !this.pending.delete(id)) return;
        reject(new RpcTransportError('socket-closed', `${method} not sent: ${error.message}`));
      });
    });
  }

  private onFrame(data: RawData): void {
    const receivedAt = performance.now();
    const text = data.toString();
    let frame: unknown = text;
    try {
      frame = JSON.parse(text);
    } catch {
      // kept as the raw text: tests look at exactly what the server sent
    }
    if (typeof frame === 'object' && frame !== null && !Array.isArray(frame)) {
      const message = frame as JsonRpcMessage;
      const call = message.id === undefined || message.id === null ? undefined : this.pending.get(message.id);
      if (call) {
        this.pending.delete(message.id!);
        call.resolve(message);
        this.wakeWaiters();
        return;
      }
      if (message.id === undefined && typeof message.method === 'string')
        this.onNotification?.({ method: message.method, params: message.params }, receivedAt);
    }
    if (this.record) this.received.push(frame);
    this.wakeWaiters();
  }

  private onClosed(code: number): void {
    this.closeCode = code;
    JsonRpcWsClient.waiting.delete(this);
    for (const [id, call] of this.pending) {
      this.pending.delete(id);
      call.reject(new RpcTransportError('socket-closed', `socket closed (${code}) before the answer to ${call.method}`));
    }
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const listener of listeners) listener(code);
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private static watch(client: JsonRpcWsClient): void {
    JsonRpcWsClient.waiting.add(client);
    if (JsonRpcWsClient.sweeper) return;
    JsonRpcWsClient.sweeper = setInterval(() => JsonRpcWsClient.sweep(), SWEEP_INTERVAL_MS);
    // Pending calls alone must not keep a process alive.
    JsonRpcWsClient.sweeper.unref();
  }

  /** Fails the calls past their deadline; stops the timer once no call waits anywhere. */
  private static sweep(): void {
    const now = Date.now();
    for (const client of JsonRpcWsClient.waiting) {
      for (const [id, call] of client.pending) {
        if (call.deadline > now) continue;
        client.pending.delete(id);
        call.reject(new RpcTransportError('timeout', `no answer to ${call.method} within ${call.timeoutMs} ms`));
      }
      if (client.pending.size === 0) JsonRpcWsClient.waiting.delete(client);
    }
    if (JsonRpcWsClient.waiting.size === 0) {
      clearInterval(JsonRpcWsClient.sweeper);
      JsonRpcWsClient.sweeper = undefined;
    }
  }
}

function resultOf<T>(response: JsonRpcMessage): T {
  if (response.error) throw new RpcCallError(response.error);
  return response.result as T;
}
