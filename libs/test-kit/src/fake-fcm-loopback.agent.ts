import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';

/**
 * Routes every connection to the fake on loopback, whatever host the SDK asks for, while TLS still checks the
 * certificate against `fcm.googleapis.com` and the fake's own CA: the SDK talks to the fake as it would to Google.
 */
export class FakeFcmLoopbackAgent extends https.Agent {
  constructor(
    private readonly port: number,
    private readonly ca: string,
  ) {
    super({ keepAlive: true });
  }

  override createConnection(options: tls.ConnectionOptions, callback?: (error: Error | null, socket: net.Socket) => void): net.Socket {
    // rejectUnauthorized stays at its default (true): the fake's certificate is checked against `ca` and the name.
    return tls.connect(
      { ...options, host: '127.0.0.1', port: this.port, servername: 'fcm.googleapis.com', ca: this.ca },
      callback as never,
    );
  }
}
