import * as https from 'node:https';
import * as net from 'node:net';
import type { AppOptions } from 'firebase-admin/app';
import { FakeFcmLoopbackAgent } from './fake-fcm-loopback.agent';
import { RecordedRequests } from './recorded-requests.log';
import { selfSignedCertificate } from './self-signed.certificate';

/** One `messages:send` request as the fake received it. */
export interface FcmRequest {
  at: number;
  project: string;
  authorization: string | undefined;
  body: {
    message: {
      token: string;
      data?: Record<string, string>;
      notification?: { title?: string; body?: string };
      android?: Record<string, unknown>;
      apns?: Record<string, unknown>;
    };
    validate_only?: boolean;
  };
}

/** How the fake answers one request: a status, an FCM error code (for errors) and headers. */
export interface FcmAnswer {
  status: number;
  errorCode?: 'UNREGISTERED' | 'INVALID_ARGUMENT' | 'QUOTA_EXCEEDED' | 'UNAVAILABLE' | 'INTERNAL' | 'SENDER_ID_MISMATCH';
  headers?: Record<string, string>;
}

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

/**
 * A local stand-in for the FCM HTTP v1 API (`POST /v1/projects/{project}/messages:send`) over HTTPS on loopback.
 * It records every request and answers from a script (`answerNext`), 200 with a message name otherwise.
 */
export class FakeFcmServer {
  private readonly log = new RecordedRequests<FcmRequest>('fake FCM');
  private readonly script: FcmAnswer[] = [];
  private readonly agents: FakeFcmLoopbackAgent[] = [];

  private constructor(
    private readonly server: https.Server,
    readonly port: number,
    private readonly ca: string,
  ) {}

  static async start(): Promise<FakeFcmServer> {
    const { key, cert } = selfSignedCertificate('fcm.googleapis.com');
    const server = https.createServer({ key, cert });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fake = new FakeFcmServer(server, (server.address() as net.AddressInfo).port, cert);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => fake.handle(req.url ?? '', req.headers.authorization, Buffer.concat(chunks).toString('utf8'), res));
    });
    return fake;
  }

  /** Options for `initializeApp` that reach this fake: a static access token and the loopback agent. */
  appOptions(projectId: string): AppOptions {
    const agent = new FakeFcmLoopbackAgent(this.port, this.ca);
    this.agents.push(agent);
    return {
      projectId,
      credential: { getAccessToken: async () => ({ access_token: `fake-token-${projectId}`, expires_in: 3600 }) },
      httpAgent: agent,
    };
  }

  /** The next requests get these answers, in order; after them, 200 again. */
  answerNext(...answers: FcmAnswer[]): void {
    this.script.push(...answers);
  }

  /** Requests for one device token. */
  requestsFor(token: string): FcmRequest[] {
    return this.log.all.filter((request) => request.body.message?.token === token);
  }

  /** Resolves once `count` requests satisfy `filter` (default: all), or rejects after `timeoutMs`. */
  waitFor(count: number, filter: (request: FcmRequest) => boolean = () => true, timeoutMs = 10_000): Promise<FcmRequest[]> {
    return this.log.waitFor(count, filter, 'matching the filter', timeoutMs);
  }

  async close(): Promise<void> {
    for (const agent of this.agents) agent.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(url: string, authorization: string | undefined, text: string, res: import('node:http').ServerResponse): void {
    const match = /^\/v1\/projects\/([^/]+)\/messages:send$/.exec(url);
    if (!match) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 404, message: 'unknown path', status: 'NOT_FOUND' } }));
      return;
    }
    let body: FcmRequest['body'];
    try {
      body = JSON.parse(text) as FcmRequest['body'];
    } catch {
      res
        .writeHead(400, { 'content-type': 'application/json' })
        .end(JSON.stringify({ error: { code: 400, message: 'bad JSON', status: 'INVALID_ARGUMENT' } }));
      return;
    }
    this.log.record({ at: Date.now(), project: match[1], authorization, body });
    const answer = this.script.shift() ?? { status: 200 };
    if (answer.status === 200) {
      res.writeHead(200, { 'content-type': 'application/json', ...answer.headers });
      res.end(JSON.stringify({ name: `projects/${match[1]}/messages/${this.log.all.length}` }));
      return;
    }
    const details = answer.errorCode
      ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: answer.errorCode }]
      : [];
    res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
    res.end(
      JSON.stringify({
        error: { code: answer.status, message: `fake ${answer.status}`, status: STATUS_NAMES[answer.status] ?? 'UNKNOWN', details },
      }),
    );
  }
}
