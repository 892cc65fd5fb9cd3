import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  MessagePickupRepositoryClient,
  PickupConnectionLostError,
  PickupFrameTooLargeError,
  RpcErrorCode,
  type MessagesReceivedParams,
} from '@didcomm-mpr/client';
import { startTestServer, type TestServer } from '../support/test-server';
import { ClientDroppingRelay } from '../support/client-dropping-relay';
import { sleep, waitUntil } from '../support/client-waits';

const MiB = 1024 * 1024;
const payload = (ciphertext = 'c') => ({ protected: 'p', iv: 'i', ciphertext, tag: 't' });

/** A bare WebSocket server standing in for a misbehaving server; `onConnection` decides what it does. */
async function fakeServer(
  onConnection: (socket: WebSocket) => void,
  options: { autoPong?: boolean } = {},
): Promise<{ url: string; connections: () => number; close: () => Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: options.autoPong ?? true });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  let connections = 0;
  server.on('connection', (socket) => {
    connections++;
    onConnection(socket);
  });
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
    close: async () => {
      for (const socket of server.clients) socket.terminate();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Frame limits, reconnect backoff, shutdown failover, listener isolation and input validation of the client's transport. */
describe('MessagePickupRepositoryClient transport safety', () => {
  const clients: MessagePickupRepositoryClient[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  const track = (client: MessagePickupRepositoryClient) => (clients.push(client), client);

  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  describe('against the real server', () => {
    let server: TestServer;
    let small: TestServer;

    beforeAll(async () => {
      server = await startTestServer();
      // MAX_FRAME_BYTES 66,560 (1 KiB payloads + the 64 KiB envelope): smaller than the client's default limit.
      small = await startTestServer({ MAX_PAYLOAD_BYTES: '1024' }, server.databaseUrl);
    });

    afterAll(async () => {
      await small?.stop();
      await server?.close();
    });

    it('refuses at once, without sending it, a call whose frame exceeds maxFrameBytes (default: the server default MAX_FRAME_BYTES)', async () => {
      const relay = await ClientDroppingRelay.start(server.wsUrl, 'none');
      cleanups.push(() => relay.close());
      const client = track(new MessagePickupRepositoryClient({ url: relay.url }));
      const connectionId = randomUUID();
      const startedAt = Date.now();
      const error = await client
        .addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload('x'.repeat(4 * MiB + 64 * 1024)) })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PickupFrameTooLargeError);
      expect(error).toMatchObject({ method: 'addMessage', maxFrameBytes: 4 * MiB + 64 * 1024 });
      expect(Date.now() - startedAt).toBeLessThan(1_000);
      expect(relay.requestsOf('addMessage')).toHaveLength(0);

      const strict = track(new MessagePickupRepositoryClient({ url: relay.url, maxFrameBytes: 2_048 }));
      await expect(
        strict.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload('x'.repeat(4_096)) }),
      ).rejects.toBeInstanceOf(PickupFrameTooLargeError);
      await expect(strict.ping()).resolves.toBe('pong');
    });

    it('fails the calls in flight when the server closes with 1009, instead of resending them in a loop', async () => {
      const relay = await ClientDroppingRelay.start(small.wsUrl, 'none');
      cleanups.push(() => relay.close());
      const client = track(new MessagePickupRepositoryClient({ url: relay.url, reconnectBaseDelayMs: 50 }));
      const connectionId = randomUUID();
      const startedAt = Date.now();
      const error = await client
        .addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload('x'.repeat(100 * 1024)) })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PickupConnectionLostError);
      expect(error).toMatchObject({ method: 'addMessage', closeCode: 1009, retryable: false });
      expect(Date.now() - startedAt).toBeLessThan(5_000);
      await expect(client.ping()).resolves.toBe('pong'); // reconnected, usable
      expect(relay.requestsOf('addMessage')).toHaveLength(1);
      await expect(client.getAvailableMessageCount({ connectionId })).resolves.toBe(0);
    });

    it('fails over once per shutting-down socket: two -32002 answers on one socket do not skip the next server', async () => {
      // Answers each pair of requests with two -32002 errors and keeps the socket open, as a draining server does.
      const draining = await fakeServer((socket) => {
        const ids: unknown[] = [];
        socket.on('message', (data) => {
          ids.push((JSON.parse(data.toString()) as { id: unknown }).id);
          if (ids.length < 2) return;
          for (const id of ids.splice(0)) {
            socket.send(
              JSON.stringify({
                jsonrpc: '2.0',
                id,
                error: { code: RpcErrorCode.ShuttingDown, message: 'Server shutting down', data: { retryable: true } },
              }),
            );
          }
        });
      });
      const after = await fakeServer(() => undefined); // answers nothing: reaching it means the real server was skipped
      cleanups.push(draining.close, after.close);
      const client = track(
        new MessagePickupRepositoryClient({
          urls: [draining.url, server.wsUrl, after.url],
          reconnectBaseDelayMs: 50,
          requestTimeoutMs: 5_000,
        }),
      );

      await expect(Promise.all([client.ping(), client.getAvailableMessageCount({ connectionId: randomUUID() })])).resolves.toEqual([
        'pong',
        0,
      ]);
      expect(draining.connections()).toBe(1);
      expect(after.connections()).toBe(0);
    });

    it('isolates listeners: one that throws is reported to onError, the others still run, and the process goes on', async () => {
      const errors: Array<{ error: unknown; context: string }> = [];
      const client = track(
        new MessagePickupRepositoryClient({ url: server.wsUrl, onError: (error, context) => errors.push({ error, context }) }),
      );
      const connectionId = randomUUID();
      const received: MessagesReceivedParams[] = [];
      client.onMessagesReceived(() => {
        throw new Error('listener bug');
      });
      // A listener that rejects, on purpose: the client must isolate it like one that throws.
      // eslint-disable-next-line @typescript-eslint/no-misused-promises
      client.onMessagesReceived(async () => {
        throw new Error('async listener bug');
      });
      client.onMessagesReceived((notification) => received.push(notification));
      client.onConnect(() => {
        throw new Error('connect listener bug');
      });
      await client.addLiveSession({ connectionId, sessionId: 's1' });
      await client.addMessage({ connectionId, recipientDids: ['did:key:bob'], payload: payload() });
      await waitUntil('the notification', () => received.length === 1);
      await waitUntil('the reports', () => errors.length === 3);
      expect(errors.map(({ error }) => (error as Error).message).sort()).toEqual([
        'async listener bug',
        'connect listener bug',
        'listener bug',
      ]);
      expect(errors.find(({ error }) => (error as Error).message === 'listener bug')!.context).toBe('a messagesReceived listener');
      await expect(client.ping()).resolves.toBe('pong');
    });

    it('rejects params that cannot be serialized, even while still connecting, without disturbing other calls', async () => {
      const client = track(new MessagePickupRepositoryClient({ url: server.wsUrl }));
      const bad = client.getAvailableMessageCount({ connectionId: 1n as unknown as string });
      const ping = client.ping();
      await expect(bad).rejects.toThrow(/getAvailableMessageCount refused: its params cannot be serialized to JSON/);
      await expect(ping).resolves.toBe('pong');
    });
  });

  it('backs off between connections that drop right after opening (the backoff starts over only after one stayed up)', async () => {
    const flaky = await fakeServer((socket) => socket.close(1011, 'going away at once'));
    cleanups.push(flaky.close);
    track(new MessagePickupRepositoryClient({ url: flaky.url, reconnectBaseDelayMs: 100, reconnectMaxDelayMs: 10_000 }))
      .connect()
      .catch(() => undefined);
    await sleep(2_500);
    // Without backoff between short-lived connections: one every 50-100 ms (25 or more). With it: 100-200, 200-400, 400-800, 800-1600 ms...
    expect(flaky.connections()).toBeGreaterThanOrEqual(2);
    expect(flaky.connections()).toBeLessThanOrEqual(7);
  });

  it('drops the socket after two unanswered pings, not one', async () => {
    const pings: number[] = [];
    let closedAfterPings = -1;
    const mute = await fakeServer(
      (socket) => {
        socket.on('ping', () => pings.push(Date.now()));
        socket.on('close', () => (closedAfterPings = closedAfterPings === -1 ? pings.length : closedAfterPings));
      },
      { autoPong: false },
    );
    cleanups.push(mute.close);
    const client = track(
      new MessagePickupRepositoryClient({
        url: mute.url,
        heartbeatIntervalMs: 150,
        reconnectBaseDelayMs: 5_000,
        reconnectMaxDelayMs: 5_000,
      }),
    );
    await client.connect();
    await waitUntil('the socket to be dropped', () => closedAfterPings !== -1, 5_000);
    expect(closedAfterPings).toBe(2);
  });

  it('validates its URLs in the constructor', () => {
    expect(() => new MessagePickupRepositoryClient({ url: 'not a url' })).toThrow(/invalid server URL "not a url"/);
    expect(() => new MessagePickupRepositoryClient({ urls: ['ws://127.0.0.1:1', 'http://127.0.0.1:2'] })).toThrow(/must use ws: or wss:/);
    expect(() => new MessagePickupRepositoryClient({ url: 'ws://127.0.0.1:1', urls: ['ws://127.0.0.1:2'] })).toThrow(
      /`url` or `urls`, not both/,
    );
    expect(() => new MessagePickupRepositoryClient({})).toThrow(/needs `url` or `urls`/);
    // An empty `urls` next to `url` is no conflict: `url` is used.
    const client = track(new MessagePickupRepositoryClient({ url: 'ws://127.0.0.1:1', urls: [] }));
    expect(client.connected).toBe(false);
  });
});
