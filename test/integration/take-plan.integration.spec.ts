import { Client } from 'pg';
import { runMigrations } from '../../apps/server/src/database';
import { createTestDatabase, sql } from '@didcomm-mpr/test-kit';

const BACKLOG = 5_000;

/**
 * The take's plan must be the ordered scan of the pending index on any statistics (migration
 * TakeInIndexOrder1764300000000). The planner's choice is steered here by cost settings instead of stale statistics,
 * because which statistics tip it depends on index sizes and versions; the function must not care either way.
 * auto_explain hands the plans of the statements inside the function back as notices.
 */
describe('take_pending_messages: the plan of the take', () => {
  let url: string;
  let drop: () => Promise<void>;
  let client: Client;
  const plans: string[] = [];

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase());
    await runMigrations(url);
    // One connection's backlog between the rows of a thousand others, as queues hold them.
    await sql(
      url,
      `INSERT INTO queued_message (tenant, connection_id, id, recipient_dids, payload, payload_bytes, expires_at)
       SELECT 'default', CASE WHEN g % 2 = 0 THEN 'target' ELSE 'other-' || (g % 1000) END, 'm-' || g, '{did:example:a}',
              '{"p":"' || repeat('x', 200) || '"}', 208, now() + interval '1 day'
       FROM generate_series(1, $1::int * 2) g`,
      [BACKLOG],
    );
    await sql(url, 'ANALYZE queued_message');
    client = new Client({ connectionString: url });
    await client.connect();
    client.on('notice', (notice: { message?: string }) => {
      if (notice.message?.includes('Query Text')) plans.push(notice.message);
    });
    await client.query(`LOAD 'auto_explain'`);
    await client.query(`SET auto_explain.log_min_duration = 0`);
    await client.query(`SET auto_explain.log_nested_statements = on`);
    await client.query(`SET auto_explain.log_level = notice`);
    // What a planner that expects next to nothing of the connection, or finds random reads dear, would prefer.
    await client.query(`SET random_page_cost = 1000`);
  });
  afterAll(async () => {
    await client?.end();
    await drop?.();
  });

  it('is not what the planner picks for the same query on its own under these costs (the set-up steers it)', async () => {
    plans.length = 0;
    await client.query(
      `SELECT ctid FROM queued_message
       WHERE tenant = 'default' AND connection_id = 'target' AND state = 0 AND expires_at > now()
       ORDER BY seq LIMIT 100 FOR UPDATE SKIP LOCKED`,
    );
    const plan = plans.join('\n');
    expect(plan).toMatch(/Seq Scan on queued_message|Bitmap Heap Scan on queued_message/);
    expect(plan).not.toMatch(/Index Scan using queued_message_pending_idx/);
  });

  it('reads the pending index in order, 100 entries for a take of 100, whatever the costs say', async () => {
    plans.length = 0;
    const { rows } = await client.query<{ taken_id: string; taken_seq: string }>(
      `SELECT taken_id, taken_seq FROM take_pending_messages('default', 'target', NULL, 100, 9000000000, 100000000, 256, false, 60000, NULL, 'test')`,
    );
    expect(rows).toHaveLength(100);
    const take = plans.find((plan) => plan.includes('WITH candidates AS'));
    expect(take).toBeDefined();
    expect(take).toMatch(/Index Scan using queued_message_pending_idx on queued_message/);
    expect(take).not.toMatch(/Seq Scan on queued_message|Bitmap Heap Scan on queued_message/);
    // The oldest 100 of the connection, in order.
    const seqs = rows.map((row) => Number(row.taken_seq)).sort((a, b) => a - b);
    const oldest = await sql<{ seq: string }>(
      url,
      `SELECT seq FROM queued_message WHERE tenant = 'default' AND connection_id = 'target' ORDER BY seq LIMIT 100`,
    );
    expect(seqs).toEqual(oldest.map((row) => Number(row.seq)));
  });
});
