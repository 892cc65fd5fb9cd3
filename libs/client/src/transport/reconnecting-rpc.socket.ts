import { type ForbiddenErrorData, RpcErrorCode, type RpcErrorObject } from '@didcomm-mpr/protocol';
import WebSocket from 'ws';
import { PickupClientClosedError } from '../errors/pickup-client-closed.error';
import { PickupConnectionLostError } from '../errors/pickup-connection-lost.error';
import { PickupForbiddenError } from '../errors/pickup-forbidden.error';
import { PickupFrameTooLargeError } from '../errors/pickup-frame-too-large.error';
import { PickupRpcError } from '../errors/pickup-rpc.error';
import { PickupTimeoutError } from '../errors/pickup-timeout.error';
import { backoffDelay } from './backoff.policy';

/** Settings of the socket; see `MessagePickupRepositoryClientOptions` for their meaning. */
export interface ReconnectingRpcSocketOptions {
  urls: string[];
  token?: string;
  /** CA certificate(s) to trust for `wss:` URLs instead of Node's default ones (a private CA). */
  ca?: string | Uint8Array | ReadonlyArray<string | Uint8Array>;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  reconnectBaseDelayMs: number;
  reconnectMaxDelayMs: number;
  heartbeatIntervalMs: number;
  maxPayloadBytes: number;
  maxFrameBytes: number;
  /** Told of exceptions thrown by listeners, which must not reach the socket's event handlers. */
  onListenerError: (error: unknown, context: string) => void;
}

/** Per-call settings of {@link ReconnectingRpcSocket.call}. */
export interface RpcCallOptions {
  /** Longest time the call may take, connection waits included (default: `requestTimeoutMs`). */
  timeoutMs?: number;
  /**
   * Whether the call may be sent again after its socket dropped before the answer arrived (default true).
   * False for calls that are not idempotent: they fail with `PickupConnectionLostError` instead.
   */
  resendable?: boolean;
  /** Params to send instead of `params` when the call is sent again after a lost connection. */
  resendParams?: unknown;
}

/** A JSON-RPC notification from the server. */
export interface RpcNotificationFrame {
  method: string;
  params: unknown;
}

interface PendingCall {
  method: string;
  /** The params serialized once, at the call (undefined: no params member). */
  paramsJson: string | undefined;
  /** The params for a send after a lost connection, if they differ. */
  resendParamsJson: string | undefined;
  resendable: boolean;
  /** Set once the call was in flight on a socket that dropped: later sends use `resendParamsJson`. */
  lost: boolean;
  timeoutMs: number;
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  /** Attempts that failed with a retryable error, for the retry delay. */
  retries: number;
  retryTimer?: NodeJS.Timeout;
}

/** `draining`: the server announced its shutdown; the socket is closing and nothing more is sent on it. */
type State = 'idle' | 'connecting' | 'open' | 'draining' | 'waiting' | 'closed';

/** A connection that stayed up this long was a success: the reconnect backoff starts over after it. */
const STABLE_CONNECTION_MS = 5_000;
/** A server that does not answer our close handshake must not keep a socket (or close()) waiting. */
const CLOSE_HANDSHAKE_TIMEOUT_MS = 2_000;
/** Unanswered heartbeat pings after which the socket is dropped. */
const MISSED_PINGS_LIMIT = 2;
/** Bytes of a request frame around the params: `{"jsonrpc":"2.0","id":<up to 16 digits>,"method":…,"params":}`. */
const FRAME_ENVELOPE_BYTES = 64;

/**
 * One WebSocket to the server that keeps itself connected: JSON-RPC 2.0 calls with per-call timeouts,
 * reconnect with exponential backoff and jitter over several URLs, and calls that wait for the
 * connection (within their timeout) instead of failing while it is down.
 *
 * A call whose socket drops before the answer arrives is sent again after the reconnect only if it is
 * resendable (`RpcCallOptions.resendable`, the default): adds carry a `messageId`, removals and reads
 * are idempotent, and a repeated take without `deleteMessages` at worst leaves messages `sending` until
 * the redelivery timeout. Calls that are not safe to repeat are marked not resendable by the client and
 * fail with `PickupConnectionLostError` instead. A close with code 1009 (a frame too big) fails the
 * calls in flight instead of resending them, and frames larger than `maxFrameBytes` are never sent.
 */
export class ReconnectingRpcSocket {
  private state: State = 'idle';
  private socket: WebSocket | undefined;
  private urlIndex = 0;
  /** Whether the current socket already moved `urlIndex` on (after -32002), so its close does not again. */
  private urlAdvancedForSocket = false;
  /** Failed connection attempts (and short-lived connections) since the last stable connection. */
  private failedAttempts = 0;
  private openedAt = 0;
  private lastConnectError: string | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  /** Sent and not answered, by JSON-RPC id. */
  private readonly inFlight = new Map<number, PendingCall>();
  /** Waiting for a connection (or for a retry delay), in call order. */
  private queued = new Set<PendingCall>();
  private readonly notificationListeners = new Set<(notification: RpcNotificationFrame) => void>();
  private readonly openListeners = new Set<(reconnect: boolean) => void>();
  private readonly closeListeners = new Set<(code: number, reason: string) => void>();
  private openedBefore = false;
  private openWaiters: Array<() => void> = [];
  private closedPromise: Promise<void> | undefined;

  constructor(private readonly options: ReconnectingRpcSocketOptions) {
    if (options.urls.length === 0) throw new Error('At least one server URL is needed');
  }

  /** Whether the socket is open (and not closing) now. */
  get connected(): boolean {
    return this.state === 'open';
  }

  /** The URL of the current (or last tried) server. */
  get currentUrl(): string {
    return this.options.urls[this.urlIndex]!;
  }

  /** Starts connecting (once); later calls do nothing. */
  start(): void {
    if (this.state !== 'idle') return;
    this.openSocket();
  }

  /** Resolves at the next open (at once if open); rejects after `timeoutMs`, or if closed. */
  waitForOpen(timeoutMs: number): Promise<void> {
    this.start();
    if (this.state === 'open') return Promise.resolve();
    if (this.state === 'closed') return Promise.reject(new PickupClientClosedError('connect'));
    return new Promise<void>((resolve, reject) => {
      const waiter = () => {
        clearTimeout(timer);
        if (this.state === 'closed') reject(new PickupClientClosedError('connect'));
        else resolve();
      };
      const timer = setTimeout(() => {
        this.openWaiters = this.openWaiters.filter((candidate) => candidate !== waiter);
        reject(new PickupTimeoutError('connect', timeoutMs, false, this.lastConnectError));
      }, timeoutMs);
      this.openWaiters.push(waiter);
    });
  }

  /** Listens to server notifications; returns the function that stops listening. A throwing listener goes to `onListenerError`. */
  onNotification(listener: (notification: RpcNotificationFrame) => void): () => void {
    this.notificationListeners.add(listener);
    return () => this.notificationListeners.delete(listener);
  }

  /**
   * Listens to each open; `reconnect` is false for the first one. Listeners run before the calls that
   * waited for the connection are sent, so calls they make go first (session re-registration).
   */
  onOpen(listener: (reconnect: boolean) => void): () => void {
    this.openListeners.add(listener);
    return () => this.openListeners.delete(listener);
  }

  /** Listens to each loss of the connection (not to `close()`). */
  onDisconnect(listener: (code: number, reason: string) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  /**
   * Calls a method; resolves with its result, rejects with `PickupRpcError`, `PickupTimeoutError`,
   * `PickupConnectionLostError`, `PickupFrameTooLargeError`, `PickupClientClosedError`, or a `TypeError`
   * for params that cannot be serialized. Never throws synchronously.
   */
  call<T>(method: string, params: unknown, options: RpcCallOptions = {}): Promise<T> {
    if (this.state === 'closed') return Promise.reject(new PickupClientClosedError(method));
    // Serialized once, here, so a bad value fails this call alone instead of throwing later inside a
    // socket event handler (which would crash the process), and the frame size is known before sending.
    let paramsJson: string | undefined;
    let resendParamsJson: string | undefined;
    try {
      paramsJson = params === undefined ? undefined : JSON.stringify(params);
      resendParamsJson = options.resendParams === undefined ? undefined : JSON.stringify(options.resendParams);
    } catch (error) {
      return Promise.reject(new TypeError(`${method} refused: its params cannot be serialized to JSON (${(error as Error).message})`));
    }
    const frameBytes =
      FRAME_ENVELOPE_BYTES +
      Buffer.byteLength(method) +
      Math.max(Buffer.byteLength(paramsJson ?? ''), Buffer.byteLength(resendParamsJson ?? ''));
    if (frameBytes > this.options.maxFrameBytes)
      return Promise.reject(new PickupFrameTooLargeError(method, frameBytes, this.options.maxFrameBytes));
    this.start();
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const pending: PendingCall = {
        method,
        paramsJson,
        resendParamsJson,
        resendable: options.resendable ?? true,
        lost: false,
        timeoutMs,
        resolve: resolve as (result: unknown) => void,
        reject,
        retries: 0,
        timer: setTimeout(() => this.expire(pending), timeoutMs),
      };
      this.send(pending);
    });
  }

  /**
   * Stops reconnecting, fails the calls still waiting with `PickupClientClosedError`, and closes the
   * socket with a normal close handshake (the server then ends this socket's live sessions).
   */
  close(): Promise<void> {
    if (this.closedPromise) return this.closedPromise;
    this.state = 'closed';
    clearTimeout(this.reconnectTimer);
    clearInterval(this.heartbeatTimer);
    for (const pending of [...this.inFlight.values(), ...this.queued]) {
      this.settle(pending);
      pending.reject(new PickupClientClosedError(pending.method));
    }
    this.inFlight.clear();
    this.queued.clear();
    for (const waiter of this.openWaiters.splice(0)) waiter();
    const socket = this.socket;
    this.socket = undefined;
    this.closedPromise = new Promise<void>((resolve) => {
      if (!socket || socket.readyState === WebSocket.CLOSED) return resolve();
      const force = setTimeout(() => socket.terminate(), CLOSE_HANDSHAKE_TIMEOUT_MS);
      socket.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
      else socket.close(1000, 'client closed');
    });
    return this.closedPromise;
  }

  private openSocket(): void {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    this.urlAdvancedForSocket = false;
    const url = this.currentUrl;
    let socket: WebSocket;
    try {
      socket = new WebSocket(url, {
        headers: this.options.token ? { Authorization: `Bearer ${this.options.token}` } : undefined,
        handshakeTimeout: this.options.connectTimeoutMs,
        maxPayload: this.options.maxPayloadBytes,
        // TLS reads any Uint8Array view (and a Buffer is one); its typings name Buffer only.
        ...(this.options.ca !== undefined ? { ca: this.options.ca as string | Buffer | Array<string | Buffer> } : {}),
      });
    } catch (error) {
      // URLs are validated by the client's constructor; should `ws` still refuse one, this runs in a
      // timer, where a throw would end the process: count it as a failed attempt and try the next URL.
      this.lastConnectError = `${url}: ${(error as Error).message}`;
      this.scheduleReconnect(false);
      return;
    }
    this.socket = socket;
    let opened = false;
    let missedPings = 0;
    socket.on('open', () => {
      opened = true;
      this.onSocketOpen(socket);
    });
    socket.on('message', (data) => this.onFrame(socket, data.toString()));
    socket.on('pong', () => {
      missedPings = 0;
    });
    socket.on('open', () => {
      clearInterval(this.heartbeatTimer);
      // The server pings too; this side detects a server (or path) that died without closing. The socket
      // is dropped when two pings went unanswered, one interval after the second.
      this.heartbeatTimer = setInterval(() => {
        if (missedPings >= MISSED_PINGS_LIMIT) return socket.terminate();
        missedPings++;
        if (socket.readyState === WebSocket.OPEN) socket.ping();
      }, this.options.heartbeatIntervalMs);
    });
    let refusedWith: number | undefined;
    socket.on('error', (error) => {
      // 'close' follows every 'error'; the reason is kept for the timeout message (the HTTP status of a
      // refused upgrade says more than the error our own terminate() causes).
      if (refusedWith === undefined) this.lastConnectError = `${url}: ${error.message}`;
    });
    socket.on('unexpected-response', (_request, response) => {
      refusedWith = response.statusCode;
      this.lastConnectError = `${url}: HTTP ${response.statusCode}${response.statusCode === 401 ? ' (token refused)' : ''}`;
      socket.terminate();
    });
    socket.on('close', (code, reason) => this.onSocketClose(socket, opened, code, reason.toString()));
  }

  private onSocketOpen(socket: WebSocket): void {
    if (this.socket !== socket || this.state === 'closed') return;
    this.state = 'open';
    this.openedAt = Date.now();
    this.lastConnectError = undefined;
    const reconnect = this.openedBefore;
    this.openedBefore = true;
    for (const listener of this.openListeners) this.runListener(() => listener(reconnect), 'a connect listener');
    // Sent after the listeners' calls, in the order they were made.
    const queued = [...this.queued].filter((pending) => pending.retryTimer === undefined);
    for (const pending of queued) {
      this.queued.delete(pending);
      this.send(pending);
    }
    for (const waiter of this.openWaiters.splice(0)) waiter();
  }

  private onSocketClose(socket: WebSocket, opened: boolean, code: number, reason: string): void {
    if (this.socket !== socket) return;
    clearInterval(this.heartbeatTimer);
    this.socket = undefined;
    if (this.state === 'closed') return;
    // The answers of calls in flight are lost. Resendable calls go back to the front of the queue; the
    // others may have been executed and must not run twice. After 1009 (a frame too big) nothing is
    // resent: the same frames would close the next socket too.
    const requeued: PendingCall[] = [];
    for (const pending of this.inFlight.values()) {
      if (code === 1009 || !pending.resendable) {
        this.settle(pending);
        pending.reject(new PickupConnectionLostError(pending.method, code));
      } else {
        pending.lost = true;
        requeued.push(pending);
      }
    }
    this.inFlight.clear();
    this.queued = new Set([...requeued, ...this.queued]);
    const stable = opened && Date.now() - this.openedAt >= STABLE_CONNECTION_MS;
    if (opened) {
      if (!this.lastConnectError) this.lastConnectError = `${this.currentUrl}: closed with code ${code}${reason ? ` (${reason})` : ''}`;
      for (const listener of this.closeListeners) this.runListener(() => listener(code, reason), 'a disconnect listener');
    }
    this.scheduleReconnect(stable);
  }

  /**
   * After a connection that stayed up `STABLE_CONNECTION_MS`, the same server is tried again first (a
   * restart keeps its address) after the base delay. Anything else counts as a failed attempt: move to the
   * next URL (unless a shutdown announcement already did), at once within a round over all URLs, with a
   * growing delay between rounds. So a server that accepts and drops at once is not hammered.
   */
  private scheduleReconnect(stable: boolean): void {
    this.state = 'waiting';
    const urls = this.options.urls.length;
    let delay: number;
    if (stable) {
      this.failedAttempts = 0;
      delay = backoffDelay(0, this.options.reconnectBaseDelayMs, this.options.reconnectMaxDelayMs);
    } else {
      this.failedAttempts++;
      if (!this.urlAdvancedForSocket) this.urlIndex = (this.urlIndex + 1) % urls;
      const round = Math.floor(this.failedAttempts / urls);
      delay =
        this.failedAttempts % urls === 0 ? backoffDelay(round, this.options.reconnectBaseDelayMs, this.options.reconnectMaxDelayMs) : 0;
    }
    this.reconnectTimer = setTimeout(() => this.openSocket(), delay);
  }

  /** Sends the call now if the socket is open (and not draining), else queues it for the next open. */
  private send(pending: PendingCall): void {
    const socket = this.socket;
    if (this.state !== 'open' || !socket || socket.readyState !== WebSocket.OPEN) {
      this.queued.add(pending);
      return;
    }
    const id = this.nextId++;
    this.inFlight.set(id, pending);
    const params = pending.lost && pending.resendParamsJson !== undefined ? pending.resendParamsJson : pending.paramsJson;
    const frame = `{"jsonrpc":"2.0","id":${id},"method":${JSON.stringify(pending.method)}${params === undefined ? '' : `,"params":${params}`}}`;
    // A failed write means the socket is going down: its 'close' handles the call like any in flight.
    socket.send(frame);
  }

  private onFrame(socket: WebSocket, text: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      // The server only sends JSON; a broken frame means a broken peer, and the reconnect starts over.
      socket.terminate();
      return;
    }
    for (const message of Array.isArray(frame) ? frame : [frame]) {
      if (!this.onMessage(socket, message as Record<string, unknown>)) return;
    }
  }

  /** Handles one message of a frame; false when the peer proved broken and the socket is being dropped. */
  private onMessage(socket: WebSocket, message: Record<string, unknown>): boolean {
    if (message === null || typeof message !== 'object') return true;
    if (typeof message.method === 'string' && message.id === undefined) {
      const notification = { method: message.method, params: message.params };
      for (const listener of this.notificationListeners) this.runListener(() => listener(notification), `a ${message.method} listener`);
      return true;
    }
    if (typeof message.id !== 'number') return true;
    const pending = this.inFlight.get(message.id);
    if (!pending) return true; // answer to a call that timed out meanwhile
    if (!isResponse(message)) {
      // An answer to our call that is neither a result nor an error object with a code and a message: a broken peer,
      // as for a frame that is not JSON. The call stays in flight and goes the way of the others when the socket ends.
      socket.terminate();
      return false;
    }
    this.inFlight.delete(message.id);
    const error = message.error as RpcErrorObject | undefined;
    if (!error) {
      this.settle(pending);
      pending.resolve(message.result);
      return true;
    }
    if (error.data?.retryable === true) {
      this.retryLater(socket, pending, error.code, error.data.retryAfterMs);
      return true;
    }
    this.settle(pending);
    pending.reject(
      error.code === RpcErrorCode.Forbidden
        ? new PickupForbiddenError(pending.method, error.code, error.message, error.data as ForbiddenErrorData)
        : new PickupRpcError(pending.method, error.code, error.message, error.data),
    );
    return true;
  }

  /**
   * A retryable error changed nothing on the server. `ShuttingDown` means this instance is draining: move
   * to another one now instead of waiting for it to close the socket. The first such answer on a socket
   * moves to the next URL and closes it; later ones (other calls in flight) only queue their call, so the
   * next server is not skipped, and nothing more is sent into the closing socket. `RateLimited` is retried
   * on the same socket once the server's `retryAfterMs` has passed (plus a little jitter, so that the calls
   * refused together do not all come back at the same instant). Other retryable errors (storage
   * unavailable) are retried on the same socket after a growing delay. The call's own timeout still
   * bounds it all, so a caller never waits longer than it asked to.
   */
  private retryLater(socket: WebSocket, pending: PendingCall, code: number, retryAfterMs: unknown): void {
    this.queued.add(pending);
    if (code === RpcErrorCode.ShuttingDown) {
      if (this.state === 'open' && this.socket === socket) {
        this.state = 'draining';
        this.urlIndex = (this.urlIndex + 1) % this.options.urls.length;
        this.urlAdvancedForSocket = true;
        const force = setTimeout(() => socket.terminate(), CLOSE_HANDSHAKE_TIMEOUT_MS);
        socket.once('close', () => clearTimeout(force));
        socket.close(1000, 'server shutting down');
      }
      return;
    }
    const serverDelay =
      code === RpcErrorCode.RateLimited && typeof retryAfterMs === 'number' && retryAfterMs > 0 ? retryAfterMs : undefined;
    const delay =
      serverDelay !== undefined ? serverDelay + Math.random() * Math.min(serverDelay, 250) : backoffDelay(pending.retries++, 100, 2_000);
    pending.retryTimer = setTimeout(() => {
      pending.retryTimer = undefined;
      if (this.state === 'open' && this.queued.delete(pending)) this.send(pending);
    }, delay);
  }

  private expire(pending: PendingCall): void {
    clearTimeout(pending.retryTimer);
    for (const [id, candidate] of this.inFlight) if (candidate === pending) this.inFlight.delete(id);
    this.queued.delete(pending);
    pending.reject(new PickupTimeoutError(pending.method, pending.timeoutMs, this.state === 'open', this.lastConnectError));
  }

  private settle(pending: PendingCall): void {
    clearTimeout(pending.timer);
    clearTimeout(pending.retryTimer);
  }

  /** Runs one user listener; its exception is reported, never thrown into the socket's event handlers. */
  private runListener(run: () => unknown, context: string): void {
    try {
      const result = run();
      if (result instanceof Promise) result.catch((error: unknown) => this.options.onListenerError(error, context));
    } catch (error) {
      this.options.onListenerError(error, context);
    }
  }
}

/** A JSON-RPC response: a result, or an error object with an integer code and a message (and an object as data, if any). */
function isResponse(message: Record<string, unknown>): boolean {
  if (!('error' in message)) return 'result' in message;
  const error = message.error as Record<string, unknown> | null;
  if (typeof error !== 'object' || error === null || Array.isArray(error)) return false;
  if (!Number.isInteger(error.code) || typeof error.message !== 'string') return false;
  return error.data === undefined || (typeof error.data === 'object' && error.data !== null && !Array.isArray(error.data));
}
