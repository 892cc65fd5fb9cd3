import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/** A request frame as the relay saw it. */
export interface RelayedRequest {
  method: string;
  params: unknown;
}

/** What the relay does to which requests; each rule applies to the first matching request only. */
export interface RelayRules {
  /** The first request matching this (a method name, or a predicate) is forwarded, and its answer is lost: the client's socket is cut instead. */
  dropAnswerOf?: string | ((request: RelayedRequest) => boolean);
  /** The first request matching this is not forwarded at all, and the connection stays up (a server that never answers it). */
  swallow?: string | ((request: RelayedRequest) => boolean);
}

function matcher(rule: string | ((request: RelayedRequest) => boolean) | undefined): (request: RelayedRequest) => boolean {
  if (rule === undefined) return () => false;
  return typeof rule === 'string' ? (request) => request.method === rule : rule;
}

/**
 * A WebSocket relay between a client under test and the real server that can lose an answer on purpose:
 * for the first request matching `dropAnswerOf`, it forwards the request, and when the server's answer
 * comes back it cuts the client's socket instead of passing the answer on (as a network failure after the
 * server committed would). It can also swallow a request (never forwarded, no answer, socket kept). It
 * records every request frame it relays or swallows, and counts the client connections.
 */
export class ClientDroppingRelay {
  readonly requests: RelayedRequest[] = [];
  connections = 0;
  private dropped = false;
  private swallowed = false;
  private readonly dropAnswerOf: (request: RelayedRequest) => boolean;
  private readonly swallow: (request: RelayedRequest) => boolean;

  private constructor(
    private readonly server: WebSocketServer,
    private readonly upstreamUrl: string,
    rules: RelayRules,
  ) {
    this.dropAnswerOf = matcher(rules.dropAnswerOf);
    this.swallow = matcher(rules.swallow);
    server.on('connection', (client) => this.relay(client));
  }

  /** Starts a relay to `upstreamUrl`; a string is the method whose first answer is lost (`'none'`: drop nothing). */
  static async start(upstreamUrl: string, rules: string | RelayRules): Promise<ClientDroppingRelay> {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    return new ClientDroppingRelay(server, upstreamUrl, typeof rules === 'string' ? { dropAnswerOf: rules } : rules);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The relayed requests of one method. */
  requestsOf(method: string): RelayedRequest[] {
    return this.requests.filter((request) => request.method === method);
  }

  close(): Promise<void> {
    for (const client of this.server.clients) client.terminate();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: WebSocket): void {
    this.connections++;
    const upstream = new WebSocket(this.upstreamUrl, { maxPayload: 0 });
    const backlog: string[] = [];
    let dropId: unknown;
    upstream.on('open', () => backlog.splice(0).forEach((frame) => upstream.send(frame)));
    client.on('message', (data) => {
      const frame = data.toString();
      const parsed = JSON.parse(frame) as { id?: unknown; method: string; params: unknown };
      const request = { method: parsed.method, params: parsed.params };
      this.requests.push(request);
      if (!this.swallowed && this.swallow(request)) {
        this.swallowed = true;
        return;
      }
      if (!this.dropped && this.dropAnswerOf(request)) {
        this.dropped = true;
        dropId = parsed.id;
      }
      if (upstream.readyState === WebSocket.OPEN) upstream.send(frame);
      else backlog.push(frame);
    });
    upstream.on('message', (data) => {
      const frame = data.toString();
      const answer = JSON.parse(frame) as { id?: unknown };
      if (dropId !== undefined && answer.id === dropId) {
        dropId = undefined;
        client.terminate();
        return;
      }
      if (client.readyState === WebSocket.OPEN) client.send(frame);
    });
    // A close code the server sent (e.g. 1009) is passed on to the client.
    upstream.on('close', (code) => {
      const sendable = (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999);
      if (client.readyState === WebSocket.OPEN && sendable) client.close(code);
      else client.terminate();
    });
    client.on('close', () => upstream.close());
    upstream.on('error', () => client.terminate());
  }
}
