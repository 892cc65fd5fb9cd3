import { createPublicKey, generateKeyPairSync, KeyObject, verify } from 'node:crypto';
import * as fs from 'node:fs';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { ProviderOptions } from '@parse/node-apn';
import { RecordedRequests } from './recorded-requests.log';
import { selfSignedCertificate } from './self-signed.certificate';

/** The APNs hosts; the fake presents a certificate for the one the server is configured for. */
export const APNS_SANDBOX_HOST = 'api.sandbox.push.apple.com';
export const APNS_PRODUCTION_HOST = 'api.push.apple.com';

/** One `POST /3/device/{token}` as the fake received it, with the provider token already checked. */
export interface ApnsRequest {
  at: number;
  authority: string;
  deviceToken: string;
  headers: { topic?: string; pushType?: string; priority?: string; expiration?: string };
  /** The provider token's claims and header, verified against the key the server was configured with. */
  jwt: { alg: string; kid: string; iss: string; iat: number; signatureValid: boolean };
  body: { aps: { alert?: { title?: string; body?: string }; 'content-available'?: number }; connectionId?: string; messageId?: string };
}

/** How the fake answers one request: a status and, for errors, Apple's reason. */
export interface ApnsAnswer {
  status: number;
  reason?: string;
}

/**
 * A local stand-in for APNs (HTTP/2 over TLS on loopback). It makes the .p8 signing key the server is configured
 * with, verifies each request's ES256 provider token against it, records every request and answers from a script
 * (`answerNext`), 200 with an `apns-id` otherwise.
 */
export class FakeApnsServer {
  private readonly log = new RecordedRequests<ApnsRequest>('fake APNs');
  private readonly script: ApnsAnswer[] = [];
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  private constructor(
    private readonly server: http2.Http2SecureServer,
    readonly port: number,
    private readonly host: string,
    private readonly ca: string,
    private readonly publicKey: KeyObject,
    /** The .p8 file to give the server as APNS_KEY_FILE. */
    readonly keyFile: string,
    private readonly keyDir: string,
  ) {}

  static async start(host: string = APNS_SANDBOX_HOST): Promise<FakeApnsServer> {
    const { key, cert } = selfSignedCertificate(host);
    const signing = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-fake-apns-'));
    const keyFile = path.join(keyDir, 'AuthKey.p8');
    fs.writeFileSync(keyFile, signing.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const server = http2.createSecureServer({ key, cert });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fake = new FakeApnsServer(
      server,
      (server.address() as net.AddressInfo).port,
      host,
      cert,
      createPublicKey(signing.privateKey),
      keyFile,
      keyDir,
    );
    server.on('session', (session) => {
      fake.sessions.add(session);
      session.on('close', () => fake.sessions.delete(session));
    });
    server.on('stream', (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => fake.handle(stream, headers, Buffer.concat(chunks).toString('utf8')));
    });
    return fake;
  }

  /**
   * The server's provider options plus a connection to this fake: every HTTP/2 session goes to loopback while TLS
   * still checks the certificate against the APNs host name and this fake's certificate only.
   */
  providerOptions(base: ProviderOptions): ProviderOptions {
    const createConnection = () =>
      tls.connect({ host: '127.0.0.1', port: this.port, servername: this.host, ca: this.ca, ALPNProtocols: ['h2'] });
    return { ...base, createConnection } as ProviderOptions;
  }

  /** The next requests get these answers, in order; after them, 200 again. */
  answerNext(...answers: ApnsAnswer[]): void {
    this.script.push(...answers);
  }

  requestsFor(deviceToken: string): ApnsRequest[] {
    return this.log.all.filter((request) => request.deviceToken === deviceToken);
  }

  /** Resolves once `count` requests for the device token arrived, or rejects after `timeoutMs`. */
  waitFor(deviceToken: string, count: number, timeoutMs = 10_000): Promise<ApnsRequest[]> {
    return this.log.waitFor(count, (request) => request.deviceToken === deviceToken, `for ${deviceToken}`, timeoutMs);
  }

  async close(): Promise<void> {
    // A server's provider may still hold its HTTP/2 session; close() alone would wait for it.
    for (const session of this.sessions) session.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.keyDir, { recursive: true, force: true });
  }

  private handle(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, text: string): void {
    const match = /^\/3\/device\/([0-9A-Za-z-]+)$/.exec(String(headers[':path']));
    if (headers[':method'] !== 'POST' || !match) {
      stream.respond({ ':status': 404, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ reason: 'BadPath' }));
      return;
    }
    this.log.record({
      at: Date.now(),
      authority: String(headers[':authority']),
      deviceToken: match[1],
      headers: {
        topic: headers['apns-topic'] as string | undefined,
        pushType: headers['apns-push-type'] as string | undefined,
        priority: headers['apns-priority'] as string | undefined,
        expiration: headers['apns-expiration'] as string | undefined,
      },
      jwt: this.checkProviderToken(String(headers.authorization ?? '')),
      body: JSON.parse(text) as ApnsRequest['body'],
    });
    const answer = this.script.shift() ?? { status: 200 };
    if (answer.status === 200) {
      stream.respond({ ':status': 200, 'apns-id': `fake-${this.log.all.length}` });
      stream.end();
      return;
    }
    stream.respond({ ':status': answer.status, 'content-type': 'application/json' });
    stream.end(JSON.stringify(answer.status === 410 ? { reason: answer.reason, timestamp: Date.now() } : { reason: answer.reason }));
  }

  /** Decodes `bearer <jwt>` and verifies its ES256 signature (raw r||s, as JWS has it) against the configured key. */
  private checkProviderToken(authorization: string): ApnsRequest['jwt'] {
    const [scheme, jwt = ''] = authorization.split(' ');
    const [header = '', claims = '', signature = ''] = jwt.split('.');
    const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8') || '{}') as Record<string, unknown>;
    const head = decode(header);
    const body = decode(claims);
    const signatureValid =
      scheme === 'bearer' &&
      verify(
        'sha256',
        Buffer.from(`${header}.${claims}`),
        { key: this.publicKey, dsaEncoding: 'ieee-p1363' },
        Buffer.from(signature, 'base64url'),
      );
    return { alg: String(head.alg), kid: String(head.kid), iss: String(body.iss), iat: Number(body.iat), signatureValid };
  }
}
