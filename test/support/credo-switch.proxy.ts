import * as net from 'node:net';
import { relay } from '@didcomm-mpr/test-kit';

/**
 * A loopback TCP proxy standing for the load balancer in front of a mediator fleet: new connections go to
 * the current target port, which the test can switch; established connections stay where they are.
 */
export class CredoSwitchProxy {
  private readonly sockets = new Set<net.Socket>();
  /** Connections relayed so far, by target port. */
  readonly connectionsTo = new Map<number, number>();

  private constructor(
    private readonly server: net.Server,
    public target: number,
  ) {
    server.on('connection', (client) => {
      this.connectionsTo.set(this.target, (this.connectionsTo.get(this.target) ?? 0) + 1);
      relay(client, net.connect(this.target, '127.0.0.1'), this.sockets);
    });
  }

  static async start(target: number): Promise<CredoSwitchProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return new CredoSwitchProxy(server, target);
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
