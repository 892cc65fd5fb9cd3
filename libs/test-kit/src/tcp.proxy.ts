import * as net from 'node:net';

/**
 * How a stalled network treats the bytes. `drop`: read and thrown away, as a black-holed route (the connections
 * are reset when the network comes back: their streams lost bytes). `hold`: as TCP in a partition: nothing moves
 * either way, senders' bytes wait in the socket buffers, and everything flows on once the network heals.
 */
export type StallMode = 'drop' | 'hold';

/**
 * A loopback TCP proxy that a test can cut, stall, switch to another target and restore: to take PostgreSQL or
 * Redis away from a server under test without stopping the shared ones, or to move clients to a promoted replica
 * as a virtual IP, a DNS switch or a pooler would.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Connections accepted while stalled in `drop` mode: held open, never answered. */
  private readonly stalled = new Set<net.Socket>();
  /** Relayed connections, client side → its upstream (for `hold`). */
  private readonly pairs = new Map<net.Socket, net.Socket>();
  /** Connections accepted while stalled in `hold` mode: relayed once the network heals. */
  private readonly waiting = new Set<net.Socket>();
  private stalling: StallMode | undefined;
  port = 0;

  private constructor(
    private targetHost: string,
    private targetPort: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetHost, targetPort);
    await proxy.listen(0);
    return proxy;
  }

  private listen(port: number): Promise<void> {
    const server = net.createServer((client) => {
      if (this.stalling === 'drop') {
        this.holdSilently(client);
        return;
      }
      if (this.stalling === 'hold') {
        client.pause();
        this.waiting.add(client);
        client.on('error', () => client.destroy());
        client.on('close', () => this.waiting.delete(client));
        return;
      }
      this.connect(client);
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
   * A network that carries nothing: open connections stop carrying data either way and new ones are accepted but
   * never answered, so the peers see no error, only silence (unlike `cut`, which they notice at once). See
   * `StallMode` for what happens to the bytes.
   */
  stall(mode: StallMode = 'drop'): void {
    this.stalling = mode;
    if (mode === 'hold') {
      for (const [client, upstream] of this.pairs) {
        for (const socket of [client, upstream]) {
          socket.unpipe();
          socket.pause();
        }
      }
      return;
    }
    for (const socket of this.sockets) {
      socket.unpipe();
      this.holdSilently(socket);
    }
  }

  /** New connections go to this target from now on; open ones stay where they are (a moved virtual IP, a DNS switch). */
  switchTo(targetHost: string, targetPort: number): void {
    this.targetHost = targetHost;
    this.targetPort = targetPort;
  }

  /** Drops the open connections but keeps accepting new ones (the old target died under them). */
  reset(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  private connect(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, this.targetHost);
    this.pairs.set(client, upstream);
    client.on('close', () => this.pairs.delete(client));
    relay(client, upstream, this.sockets);
  }

  private holdSilently(socket: net.Socket): void {
    this.stalled.add(socket);
    socket.removeAllListeners('data');
    socket.on('data', () => undefined); // read and dropped, as on a black-holed route
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.stalled.delete(socket));
  }

  /**
   * The network heals: connections accepted again on the same port. Connections stalled in `drop` mode are reset;
   * in `hold` mode every byte that waited is delivered and the connections carry on.
   */
  async restore(): Promise<void> {
    const held = this.stalling === 'hold';
    this.stalling = undefined;
    for (const socket of this.stalled) socket.destroy();
    this.stalled.clear();
    if (held) {
      for (const [client, upstream] of this.pairs) {
        client.pipe(upstream).pipe(client);
        client.resume();
        upstream.resume();
      }
      for (const client of this.waiting) {
        this.connect(client);
        client.resume();
      }
      this.waiting.clear();
    }
    if (!this.server) await this.listen(this.port);
  }

  close(): Promise<void> {
    for (const socket of this.waiting) socket.destroy();
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
