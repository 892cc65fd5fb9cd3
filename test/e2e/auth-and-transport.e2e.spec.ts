import { WebSocket } from 'ws';
import { JsonRpcWsClient, upgradeOutcome as upgrade } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * Transport rules: bearer-token auth at the WebSocket upgrade (HTTP 401), the `/` path, the unauthenticated
 * HTTP endpoints (/health, /metrics), heartbeat pings ending unresponsive sockets and their sessions.
 */

const HEARTBEAT_INTERVAL_MS = 200;
const AUTH = { Authorization: 'Bearer t1' };

async function waitUntil(condition: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The value of a Prometheus sample line whose name and labels match, or undefined. */
function sample(metrics: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of metrics.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries(
      [...(match[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => present[key] === value)) return Number(match[4]);
  }
  return undefined;
}

describe('auth and transport', () => {
  let server: TestServer;
  let client: JsonRpcWsClient;
  let n = 0;
  const conn = () => `transport-${++n}-${Date.now()}`;

  beforeAll(async () => {
    server = await startTestServer({ AUTH_TOKENS: 't1,t2', HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS) });
    client = await JsonRpcWsClient.connect(server.wsUrl, { headers: AUTH });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  describe('AUTH_TOKENS', () => {
    it('refuses an upgrade without a token with HTTP 401', async () => {
      expect(await upgrade(server.wsUrl)).toBe(401);
    });

    it.each([
      ['a wrong bearer token', '/', { Authorization: 'Bearer nope' }],
      ['a prefix of a token', '/', { Authorization: 'Bearer t' }],
      ['a token with a suffix', '/', { Authorization: 'Bearer t1x' }],
      ['two tokens at once', '/', { Authorization: 'Bearer t1,t2' }],
      ['an empty bearer token', '/', { Authorization: 'Bearer ' }],
      ['a token without the Bearer scheme', '/', { Authorization: 't1' }],
      ['a wrong query token', '/?token=nope', {}],
      ['an empty query token', '/?token=', {}],
    ])('refuses %s with HTTP 401', async (_what, path, headers) => {
      expect(await upgrade(`${server.wsUrl}${path}`, headers as Record<string, string>)).toBe(401);
    });

    it('accepts each configured token as Authorization: Bearer, and as ?token=', async () => {
      expect(await upgrade(server.wsUrl, { Authorization: 'Bearer t2' })).toBe('open');
      expect(await upgrade(server.wsUrl, { Authorization: 'Bearer t1' })).toBe('open');
      expect(await upgrade(`${server.wsUrl}/?token=t1`)).toBe('open');
      expect(await upgrade(`${server.wsUrl}/?token=t2`)).toBe('open');
      for (const [url, headers] of [
        [server.wsUrl, { Authorization: 'Bearer t2' }],
        [`${server.wsUrl}/?token=t1`, {}],
      ] as const) {
        const authorised = await JsonRpcWsClient.connect(url, { headers });
        try {
          expect(await authorised.call('ping')).toBe('pong');
        } finally {
          await authorised.close();
        }
      }
    });

    it('serves GET /health and GET /metrics without a token', async () => {
      expect((await fetch(`${server.httpUrl}/health`)).status).toBe(200);
      expect((await fetch(`${server.httpUrl}/metrics`)).status).toBe(200);
    });
  });

  it('refuses an upgrade on another path with HTTP 404', async () => {
    expect(await upgrade(`${server.wsUrl}/other`, AUTH)).toBe(404);
    expect(await upgrade(`${server.wsUrl}/other/?token=t1`)).toBe(404);
  });

  describe('heartbeat and socket close', () => {
    it('terminates a socket that stops answering pings, ending its live session, while a normal socket stays connected', async () => {
      const silentConnection = conn();
      const normalConnection = conn();
      const silent = new WebSocket(server.wsUrl, { headers: AUTH, autoPong: false });
      let silentOpenedAt = 0;
      const silentClosed = new Promise<{ code: number; afterMs: number }>((resolve) =>
        silent.once('close', (code) => resolve({ code, afterMs: Date.now() - silentOpenedAt })),
      );
      await new Promise<void>((resolve, reject) => {
        silent.once('open', () => {
          silentOpenedAt = Date.now();
          resolve();
        });
        silent.once('error', reject);
      });
      let pings = 0;
      silent.on('ping', () => pings++);
      const reply = new Promise((resolve) => silent.once('message', (data) => resolve(JSON.parse(data.toString()))));
      silent.send(
        JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'addLiveSession', params: { connectionId: silentConnection, sessionId: 's' } }),
      );
      expect(await reply).toEqual({ jsonrpc: '2.0', id: 1, result: true });

      const normal = await JsonRpcWsClient.connect(server.wsUrl, { headers: AUTH });
      try {
        expect(await normal.call('addLiveSession', { connectionId: normalConnection, sessionId: 's' })).toBe(true);
        expect(await client.call('getLiveSession', { connectionId: silentConnection })).toBe(true);
        const normalSince = Date.now();

        // Two missed pongs end it: about three intervals after it opened, well within a second.
        const { afterMs } = await silentClosed;
        expect(pings).toBeGreaterThanOrEqual(2);
        expect(afterMs).toBeLessThan(5 * HEARTBEAT_INTERVAL_MS + 200);
        await waitUntil(
          async () => (await client.call('getLiveSession', { connectionId: silentConnection })) === false,
          2_000,
          'the silent socket’s session to end',
        );

        // The responsive socket (ws answers pings) outlives several intervals with its session intact.
        const left = 1_000 + HEARTBEAT_INTERVAL_MS - (Date.now() - normalSince);
        if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
        expect(normal.socket.readyState).toBe(WebSocket.OPEN);
        expect(await normal.call('ping')).toBe('pong');
        expect(await client.call('getLiveSession', { connectionId: normalConnection })).toBe(true);
      } finally {
        await normal.close();
        silent.terminate();
      }
    });

    it('ends every session a socket holds when it closes, and only those', async () => {
      const holder = await JsonRpcWsClient.connect(server.wsUrl, { headers: AUTH });
      const held = [conn(), conn(), conn()];
      const kept = conn();
      for (const connectionId of held)
        expect(await holder.call('addLiveSession', { connectionId, sessionId: `s-${connectionId}` })).toBe(true);
      expect(await client.call('addLiveSession', { connectionId: kept, sessionId: 'mine' })).toBe(true);
      for (const connectionId of held) expect(await client.call('getLiveSession', { connectionId })).toBe(true);
      await holder.close();
      await waitUntil(
        async () =>
          (await Promise.all(held.map((connectionId) => client.call('getLiveSession', { connectionId })))).every(
            (isHeld) => isHeld === false,
          ),
        2_000,
        'the closed socket’s sessions to end',
      );
      expect(await client.call('getLiveSession', { connectionId: kept })).toBe(true);
      expect(await client.call('removeLiveSession', { connectionId: kept })).toBe(true);
    });

    it('ends the sessions of a socket that vanishes without a close handshake', async () => {
      const holder = await JsonRpcWsClient.connect(server.wsUrl, { headers: AUTH });
      const connectionId = conn();
      expect(await holder.call('addLiveSession', { connectionId, sessionId: 's' })).toBe(true);
      holder.socket.terminate();
      await waitUntil(
        async () => (await client.call('getLiveSession', { connectionId })) === false,
        2_000,
        'the terminated socket’s session to end',
      );
    });
  });

  describe('GET /health and GET /metrics', () => {
    it('/health answers 200 with PostgreSQL up', async () => {
      const response = await fetch(`${server.httpUrl}/health`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/application\/json/);
      expect(await response.json()).toMatchObject({ checks: { postgres: { status: 'up' } } });
    });

    it('/metrics serves Prometheus text with the queue, session, socket, latency and error metrics', async () => {
      const connectionId = conn();
      await client.call('addMessage', { connectionId, recipientDids: ['did:example:a'], payload: { metrics: true } });
      expect(await client.call('addLiveSession', { connectionId, sessionId: 's' })).toBe(true);
      const error = await client.request('noSuchMethod', {});
      expect(error.error?.code).toBe(-32601);

      let text = '';
      // The queue gauges are read from PostgreSQL at most once per second: wait for a scrape that sees the add.
      await waitUntil(
        async () => {
          const response = await fetch(`${server.httpUrl}/metrics`);
          expect(response.status).toBe(200);
          expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
          text = await response.text();
          return (sample(text, 'mpr_pending_messages') ?? 0) >= 1;
        },
        3_000,
        'mpr_pending_messages to count the added message',
      );
      for (const name of [
        'mpr_messages_added_total',
        'mpr_pending_messages',
        'mpr_oldest_pending_message_age_seconds',
        'mpr_live_sessions',
        'mpr_open_sockets',
        'mpr_request_duration_seconds',
        'mpr_rpc_errors_total',
      ]) {
        expect(text).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
      }
      expect(sample(text, 'mpr_messages_added_total')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'mpr_oldest_pending_message_age_seconds')).toBeGreaterThanOrEqual(0);
      expect(sample(text, 'mpr_live_sessions')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'mpr_open_sockets')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'mpr_request_duration_seconds_count', { method: 'addMessage' })).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'mpr_request_duration_seconds_bucket', { method: 'addLiveSession', le: '+Inf' })).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'mpr_rpc_errors_total', { code: '-32601' })).toBeGreaterThanOrEqual(1);
      expect(await client.call('removeLiveSession', { connectionId })).toBe(true);
    });
  });
});
