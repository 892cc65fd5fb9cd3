import * as net from 'node:net';

/**
 * A loopback TCP proxy that a test can cut and restore, to take PostgreSQL away from a server under test
 * without stopping the shared test PostgreSQL.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Connections accepted while stalled: held open, never answered. */
  private readonly stalled = new Set<net.Socket>();
  private stalling = false;
  port = 0;

  private constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetHost, targetPort);
    await proxy.listen(0);
    return proxy;
  }

  private listen(port: number): Promise<void> {
    const server = net.createServer((client) => {
      if (this.stalling) {
        this.holdSilently(client);
        return;
      }
      relay(client, net.connect(this.targetPort, this.targetHost), this.sockets);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  /** Drops every open connection and refuses new ones (as a PostgreSQL that went away). */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  /**
   * A network that drops every packet: open connections stop carrying data either way and new ones are accepted
   * but never answered, so the server sees no error, only silence (unlike `cut`, which it notices at once).
   */
  stall(): void {
    this.stalling = true;
    for (const socket of this.sockets) {
      socket.unpipe();
      this.holdSilently(socket);
    }
  }

  private holdSilently(socket: net.Socket): void {
    this.stalled.add(socket);
    socket.removeAllListeners('data');
    socket.on('data', () => undefined); // read and dropped, as on a black-holed route
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.stalled.delete(socket));
  }

  /** Accepts connections again on the same port; connections held through a stall are reset. */
  async restore(): Promise<void> {
    this.stalling = false;
    for (const socket of this.stalled) socket.destroy();
    this.stalled.clear();
    if (!this.server) await this.listen(this.port);
  }

  close(): Promise<void> {
    return this.cut();
  }
}

/**
 * Pipes `client` and `upstream` into each other, as a proxy does: each end's close or error ends the other, and
 * both stay in `tracked` while open (so the proxy can cut them all).
 */
export function relay(client: net.Socket, upstream: net.Socket, tracked: Set<net.Socket>): void {
  for (const socket of [client, upstream]) {
    tracked.add(socket);
    socket.on('close', () => tracked.delete(socket));
    socket.on('error', () => socket.destroy());
  }
  client.pipe(upstream).pipe(client);
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}
