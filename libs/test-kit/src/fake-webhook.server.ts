import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { RecordedRequests } from './recorded-requests.log';

export interface WebhookRequest {
  at: number;
  headers: http.IncomingHttpHeaders;
  body: { tenant: string; connectionId: string; messageId: string; token?: string; type?: string; appId?: string };
}

export interface WebhookAnswer {
  status: number;
  headers?: Record<string, string>;
}

/** An operator's notification service on loopback: records each POST, answers from a script (204 otherwise). */
export class FakeWebhookServer {
  private readonly log = new RecordedRequests<WebhookRequest>('fake webhook');
  private readonly script: WebhookAnswer[] = [];

  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeWebhookServer> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const fake = new FakeWebhookServer(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        fake.log.record({
          at: Date.now(),
          headers: req.headers,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookRequest['body'],
        });
        const answer = fake.script.shift() ?? { status: 204 };
        res.writeHead(answer.status, answer.headers).end();
      });
    });
    return fake;
  }

  answerNext(...answers: WebhookAnswer[]): void {
    this.script.push(...answers);
  }

  requestsFor(connectionId: string): WebhookRequest[] {
    return this.log.all.filter((request) => request.body.connectionId === connectionId);
  }

  waitFor(connectionId: string, count: number, timeoutMs = 10_000): Promise<WebhookRequest[]> {
    return this.log.waitFor(count, (request) => request.body.connectionId === connectionId, `for ${connectionId}`, timeoutMs);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
