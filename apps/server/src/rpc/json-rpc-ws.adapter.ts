import { IncomingMessage, Server as HttpServer } from 'node:http';
import { Duplex } from 'node:stream';
import { INestApplication } from '@nestjs/common';
import { AbstractWsAdapter } from '@nestjs/websockets';
import { WebSocket, WebSocketServer } from 'ws';
import { AppConfig } from '../config';
import { AccessTokenRegistry } from './access-token.registry';
import { ConnectionGate } from './connection-gate';

function refuseUpgrade(socket: Duplex, status: number, reason: string, extraHeaders = ''): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n${extraHeaders}\r\n`);
}

/**
 * Serves the gateway on the HTTP server's port at path `/`. It owns the transport rules: the frame limit
 * (a larger frame closes the socket with 1009), bearer-token auth at the upgrade (HTTP 401; the token's grant goes
 * with the socket to the gateway), and refusing upgrades during shutdown. Frames are not routed by Nest's event names:
 * the gateway reads them as JSON-RPC.
 */
// ws' typed `on` overloads do not fit Nest's loose BaseWsInstance constraint, hence the untyped base.
export class JsonRpcWsAdapter extends AbstractWsAdapter {
  constructor(
    app: INestApplication,
    private readonly config: AppConfig,
    private readonly gate: ConnectionGate,
    private readonly access: AccessTokenRegistry,
  ) {
    super(app);
  }

  create(_port: number, options?: { path?: string }): WebSocketServer {
    const path = options?.path ?? '/';
    const server = new WebSocketServer({
      noServer: true,
      maxPayload: this.config.maxFrameBytes,
      // Encrypted DIDComm payloads do not compress; deflate would cost CPU and memory per socket for nothing.
      perMessageDeflate: false,
    });
    (this.httpServer as HttpServer).on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const pathname = new URL(request.url ?? '/', 'http://localhost').pathname;
      if (pathname !== path) return refuseUpgrade(socket, 404, 'Not Found');
      if (!this.gate.accepting) return refuseUpgrade(socket, 503, 'Service Unavailable');
      const grant = this.access.authenticate(request);
      if (!grant) return refuseUpgrade(socket, 401, 'Unauthorized', 'WWW-Authenticate: Bearer\r\n');
      server.handleUpgrade(request, socket, head, (client) => server.emit('connection', client, request, grant));
    });
    return server;
  }

  /** ws signals the end of a socket with 'close' (the base class listens for socket.io's 'disconnect'). */
  override bindClientDisconnect(client: WebSocket, callback: () => void): void {
    client.on('close', callback);
  }

  bindMessageHandlers(): void {
    // Intentionally empty: the gateway reads each socket's frames itself (JSON-RPC, not Nest event routing).
  }

  override async close(server: WebSocketServer): Promise<void> {
    for (const client of server.clients) client.terminate();
    await super.close(server);
  }
}
