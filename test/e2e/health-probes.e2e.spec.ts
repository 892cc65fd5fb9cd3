import { Client } from 'pg';
import { createTestDatabase, findFreePort, JsonRpcWsClient, metricValue, sql, TcpProxy } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * GET /health/live (the process answers) and GET /health/ready (PostgreSQL answers, migrations done, not draining;
 * Redis degraded stays ready), against the real server: during a PostgreSQL outage, while draining after shutdown
 * began, and with Redis unreachable. The `mpr_ready`, `mpr_postgres_up` and `mpr_draining` gauges say the same.
 */

async function probe(server: TestServer, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.httpUrl}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function waitForStatus(
  server: TestServer,
  path: string,
  status: number,
  timeoutMs = 15_000,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await probe(server, path);
    if (answer.status === status) return answer;
    if (Date.now() > deadline) throw new Error(`${path} answered ${answer.status} ${JSON.stringify(answer.body)}, expected ${status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('liveness and readiness', () => {
  it('live and ready answer 200 on a healthy server, with the gauges at 1', async () => {
    const server = await startTestServer();
    try {
      expect(await probe(server, '/health/live')).toMatchObject({ status: 200, body: { status: 'ok' } });
      expect(await probe(server, '/health/ready')).toMatchObject({
        status: 200,
        body: {
          status: 'ready',
          checks: { postgres: { status: 'up' }, migrations: 'done', draining: false, pubsub: { status: 'up', mode: 'in-process' } },
        },
      });
      expect(await probe(server, '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
      expect(await metricValue(server.httpUrl, 'mpr_ready')).toBe(1);
      expect(await metricValue(server.httpUrl, 'mpr_postgres_up')).toBe(1);
      expect(await metricValue(server.httpUrl, 'mpr_draining')).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('ready answers 503 during a PostgreSQL outage while live stays 200, and 200 again once PostgreSQL is back', async () => {
    const database = await createTestDatabase();
    const target = new URL(database.url);
    const proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    target.host = `127.0.0.1:${proxy.port}`;
    const server = await startTestServer({ DATABASE_QUERY_TIMEOUT_MS: '1000' }, target.toString());
    try {
      await proxy.cut();
      expect(await waitForStatus(server, '/health/ready', 503)).toMatchObject({
        body: { status: 'not-ready', checks: { postgres: { status: 'down' }, draining: false } },
      });
      expect(await probe(server, '/health/live')).toMatchObject({ status: 200 });
      expect((await probe(server, '/health')).status).toBe(503);
      expect(await metricValue(server.httpUrl, 'mpr_ready')).toBe(0);
      expect(await metricValue(server.httpUrl, 'mpr_postgres_up')).toBe(0);
      await proxy.restore();
      await waitForStatus(server, '/health/ready', 200);
    } finally {
      await proxy.restore();
      await server.stop();
      await proxy.close();
      await database.drop();
    }
  });

  it('ready answers 503 while the instance drains after shutdown began (in-flight work pending), live 200', async () => {
    const server = await startTestServer({ SHUTDOWN_TIMEOUT_MS: '30000' });
    const client = await JsonRpcWsClient.connect(server.wsUrl);
    const holder = new Client({ connectionString: server.databaseUrl });
    await holder.connect();
    try {
      // An uncommitted row with the key of the next add holds that add in flight: the drain waits for it.
      await holder.query('BEGIN');
      await holder.query(
        `INSERT INTO queued_message (tenant, connection_id, id, recipient_dids, payload, payload_bytes, expires_at) VALUES ('default', 'drain', 'held', '{did:a}', '{}', 2, now() + interval '1 hour')`,
      );
      const add = client.call('addMessage', { connectionId: 'drain', recipientDids: ['did:a'], payload: {}, messageId: 'held' }, 30_000);
      const deadline = Date.now() + 10_000;
      while (
        (
          await sql<{ n: string }>(
            server.databaseUrl,
            `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO queued_message%'`,
          )
        )[0].n !== '1'
      ) {
        if (Date.now() > deadline) throw new Error('the add never waited on the held row');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect((await probe(server, '/health/ready')).status).toBe(200);

      const stopping = server.stop();
      expect(await waitForStatus(server, '/health/ready', 503)).toMatchObject({
        body: { status: 'not-ready', checks: { postgres: { status: 'up' }, draining: true } },
      });
      expect(await probe(server, '/health/live')).toMatchObject({ status: 200 });
      expect(await metricValue(server.httpUrl, 'mpr_draining')).toBe(1);
      expect(await metricValue(server.httpUrl, 'mpr_ready')).toBe(0);

      await holder.query('ROLLBACK');
      expect(await add).toEqual({ messageId: 'held' });
      await stopping;
    } finally {
      await holder.end().catch(() => undefined);
      await client.close().catch(() => undefined);
      await server.close();
    }
  });

  it('stays ready with Redis unreachable (degraded), and says so', async () => {
    const server = await startTestServer({ REDIS_URL: `redis://127.0.0.1:${await findFreePort()}` });
    try {
      expect(await probe(server, '/health/ready')).toMatchObject({
        status: 200,
        body: { status: 'ready', checks: { pubsub: { status: 'degraded', mode: 'redis' } } },
      });
      expect(await probe(server, '/health')).toMatchObject({ status: 200, body: { status: 'degraded' } });
      expect(await metricValue(server.httpUrl, 'mpr_pubsub_up{mode="redis"}')).toBe(0);
      expect(await metricValue(server.httpUrl, 'mpr_ready')).toBe(1);
    } finally {
      await server.close();
    }
  });
});
