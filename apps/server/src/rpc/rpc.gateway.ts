import { IncomingMessage } from 'node:http';
import { BeforeApplicationShutdown, Inject, Logger } from '@nestjs/common';
import { OnGatewayConnection, OnGatewayDisconnect, OnGatewayInit, WebSocketGateway } from '@nestjs/websockets';
import { RpcErrorCode } from '@didcomm-mpr/protocol';
import { RawData, WebSocket, WebSocketServer } from 'ws';
import { APP_CONFIG, AppConfig } from '../config';
import { LiveSessionService } from '../live-session';
import { MetricsService } from '../metrics';
import { QueueService } from '../queue';
import { AccessGrant } from './access-grant';
import { AccessTokenRegistry } from './access-token.registry';
import { ClientConnection } from './client-connection';
import { ConnectionGate } from './connection-gate';
import { RpcDispatcher } from './rpc-dispatcher.service';

/** Two unanswered pings end a socket (and the live sessions it holds). */
const MAX_MISSED_PONGS = 2;
const SHUTTING_DOWN = { code: RpcErrorCode.ShuttingDown, message: 'Server shutting down; retry on another instance' };
const INTERNAL_ERROR = { code: RpcErrorCode.InternalError, message: 'Internal error' };
const CLOSE_HANDSHAKE_TIMEOUT_MS = 2_000;
/** A socket whose token was revoked is closed with 1008; one that does not complete the close by then is dropped. */
const REVOKED_CLOSE_TIMEOUT_MS = 500;
/** WebSocket close code 1008: policy violation. */
const CLOSE_POLICY_VIOLATION = 1008;
/** Frames being handled per socket before its reading is paused. */
const MAX_IN_FLIGHT_PER_SOCKET = 512;

/**
 * The WebSocket endpoint: one socket per mediator instance, one JSON-RPC message (or batch) per frame.
 * Keeps sockets alive with pings, ends the sessions of sockets that close or stop answering, closes the sockets of
 * tokens a reload revoked, and drains in-flight requests at shutdown.
 */
@WebSocketGateway({ path: '/' })
export class RpcGateway implements OnGatewayInit, OnGatewayConnection, OnGatewayDisconnect, BeforeApplicationShutdown {
  private readonly logger = new Logger(RpcGateway.name);
  private readonly connections = new Map<WebSocket, ClientConnection>();
  /** Sessions of sockets that closed, still ending (their messages going back to pending): shutdown waits for them. */
  private readonly ending = new Set<Promise<void>>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly dispatcher: RpcDispatcher,
    private readonly sessions: LiveSessionService,
    private readonly queue: QueueService,
    private readonly gate: ConnectionGate,
    private readonly metrics: MetricsService,
    access: AccessTokenRegistry,
  ) {
    access.onRevoked(() => this.closeRevoked());
  }

  afterInit(_server: WebSocketServer): void {
    this.heartbeat = setInterval(() => this.beat(), this.config.heartbeatIntervalMs);
    this.heartbeat.unref();
  }

  /** `grant`: the upgrade's token, authenticated by the adapter. */
  handleConnection(socket: WebSocket, request: IncomingMessage, grant: AccessGrant): void {
    const connection = new ClientConnection(socket, request.socket.remoteAddress ?? 'unknown', grant);
    this.connections.set(socket, connection);
    this.metrics.openSockets.inc({ tenant: grant.tenant });
    // Revoked between the upgrade's check and now (a reload in between).
    if (grant.revoked) this.closeRevoked();
    socket.on('pong', () => (connection.missedPongs = 0));
    socket.on('message', (data: RawData) => void this.onFrame(connection, data));
    socket.on('error', (error) => this.logger.debug({ message: `Socket error: ${error.message}`, socketId: connection.id }));
  }

  handleDisconnect(socket: WebSocket): void {
    const connection = this.connections.get(socket);
    if (!connection) return;
    this.connections.delete(socket);
    this.metrics.openSockets.dec({ tenant: connection.grant.tenant });
    const ending = this.sessions
      .endHolder(connection)
      .catch((error: unknown) =>
        this.logger.error(`Ending the sessions of socket ${connection.id} failed: ${(error as Error).stack ?? String(error)}`),
      )
      .finally(() => this.ending.delete(ending));
    this.ending.add(ending);
  }

  private async onFrame(connection: ClientConnection, data: RawData): Promise<void> {
    // The socket is closing because its token was revoked: nothing more runs for it.
    if (connection.grant.revoked) return;
    const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as Buffer).toString('utf8');
    // A client pipelining without reading its replies must not make us queue unbounded work: stop reading
    // its socket until half of what it sent is answered.
    if (++connection.inFlight >= MAX_IN_FLIGHT_PER_SOCKET) connection.socket.pause();
    try {
      let reply: string | undefined;
      try {
        reply = await this.dispatcher.handleFrame(text, connection, this.gate.accepting ? undefined : SHUTTING_DOWN);
      } catch (error) {
        // The dispatcher answers every method error itself; this is a bug, so say so, and still answer.
        this.logger.error(
          { message: `Handling a frame failed: ${(error as Error)?.message ?? String(error)}`, socketId: connection.id },
          (error as Error)?.stack,
        );
        reply = await this.dispatcher.handleFrame(text, connection, INTERNAL_ERROR).catch(() => undefined);
      }
      if (reply !== undefined && connection.isOpen) {
        await connection
          .send(reply)
          .catch((error: unknown) => this.logger.debug(`Reply to socket ${connection.id} not sent: ${(error as Error).message}`));
      }
    } finally {
      if (--connection.inFlight === Math.floor(MAX_IN_FLIGHT_PER_SOCKET / 2)) connection.socket.resume();
    }
  }

  /**
   * A reload removed tokens (or changed their tenant or role): their sockets close with 1008 now, and are dropped if
   * the close does not complete within REVOKED_CLOSE_TIMEOUT_MS; either way their live sessions end as on any close.
   */
  private closeRevoked(): void {
    const closed = new Map<string, number>();
    for (const connection of this.connections.values()) {
      if (!connection.grant.revoked || connection.socket.readyState !== WebSocket.OPEN) continue;
      closed.set(connection.grant.name, (closed.get(connection.grant.name) ?? 0) + 1);
      this.metrics.socketsRevoked.inc({ token: connection.grant.name });
      const timer = setTimeout(() => connection.socket.terminate(), REVOKED_CLOSE_TIMEOUT_MS);
      timer.unref();
      connection.socket.once('close', () => clearTimeout(timer));
      connection.socket.close(CLOSE_POLICY_VIOLATION, 'token revoked');
    }
    if (closed.size > 0) {
      this.logger.log(
        `Closed the sockets of revoked tokens with 1008: ${[...closed].map(([name, count]) => `${name} (${count})`).join(', ')}`,
      );
    }
  }

  private beat(): void {
    for (const connection of this.connections.values()) {
      if (connection.missedPongs >= MAX_MISSED_PONGS) {
        this.logger.log(`Socket ${connection.id} from ${connection.remoteAddress} stopped answering pings; closing it`);
        connection.socket.terminate();
        continue;
      }
      connection.missedPongs++;
      connection.socket.ping();
    }
  }

  /**
   * SIGTERM: refuse new sockets and requests, let in-flight requests finish (bounded by SHUTDOWN_TIMEOUT_MS),
   * end the live sessions (their in-flight messages go back to pending), then close the sockets.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.gate.close();
    clearInterval(this.heartbeat);
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    while (Date.now() < deadline && (!this.queue.idle || [...this.connections.values()].some((c) => c.inFlight > 0))) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const open = [...this.connections.values()];
    await Promise.all([...this.ending, ...open.map((connection) => this.sessions.endHolder(connection))]);
    // Complete the close handshakes before the adapter terminates what is left, so clients see 1001 (going
    // away: reconnect elsewhere) rather than 1006.
    await Promise.all(
      open.map(
        (connection) =>
          new Promise<void>((resolve) => {
            if (connection.socket.readyState === WebSocket.CLOSED) return resolve();
            const timer = setTimeout(resolve, CLOSE_HANDSHAKE_TIMEOUT_MS);
            connection.socket.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
            connection.socket.close(1001, 'server shutting down');
          }),
      ),
    );
    this.logger.log(`Shutdown: drained requests and ended the sessions of ${open.length} sockets`);
  }
}
