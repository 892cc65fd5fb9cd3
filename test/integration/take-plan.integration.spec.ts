import { Client } from 'pg';
import { ConnectionRef } from '../../apps/server/src/config';
import { DatabaseExecutor, MessageRepository, runMigrations, StatementRunner } from '../../apps/server/src/database';
import { Row } from '../../apps/server/src/database/database.executor';
import { createTestDatabase, sql } from '@didcomm-mpr/test-kit';

const BACKLOG = 20_000;
const TARGET: ConnectionRef = { tenant: 'default', connectionId: 'target' };
/** One primary-key lookup per requested id, driven by the requests. */
const KEY_LOOKUP =
  /Index Scan using queued_message_pkey on queued_message q(_1)?\s+\(cost=[^)]*\)\s+Index Cond: \(\(tenant = [^)]+\) AND \(connection_id = [^)]+\) AND \(id = t\.i\)\)/;

/** The executor the server runs on, keeping the text and values of the last statement of each name. */
class RecordingExecutor extends DatabaseExecutor {
  readonly statements = new Map<string, { text: string; values: unknown[] }>();

  override query<T extends Row>(name: string, text: string, values: unknown[]): Promise<T[]> {
    this.statements.set(name, { text, values });
    return super.query<T>(name, text, values);
  }

  override withConnection<T>(
    work: (runner: StatementRunner) => Promise<T>,
    cleanup?: (runner: StatementRunner) => Promise<void>,
  ): Promise<T> {
    return super.withConnection(
      (runner) =>
        work({
          query: (name, text, values) => {
            this.statements.set(name, { text, values });
            return runner.query(name, text, values);
          },
        }),
      cleanup,
    );
  }
}

/**
 * The request path's statements keep to the connection's own indexes on the statistics of a table ANALYZEd nearly
 * empty, with a backlog that arrived since. On those statistics the planner expects a row or two for the connection,
 * and every path costs about the same: the take as a plain statement walked the expiry index (every unexpired row
 * of the table) or the primary key (every row of the connection) and sorted. The take is a function whose plan
 * cannot leave the pending index (migration TakeInIndexOrder1764500000000); the expiry index answers only the sweep's
 * own expression (SweepOnlyExpiryIndex1764400000000). The control case shows that the set-up still tips the planner
 * for the plain statement, so that this test keeps meaning something.
 */
describe('the request path plans on stale statistics', () => {
  let url: string;
  let drop: () => Promise<void>;
  let executor: RecordingExecutor;
  let repository: MessageRepository;
  let client: Client;

  /** The plan of a recorded statement with its recorded values, custom or generic, in a rolled-back transaction. */
  const plan = async (name: string, generic = false): Promise<string> => {
    const statement = executor.statements.get(name);
    if (!statement) throw new Error(`no statement named ${name} was run`);
    const literal = (value: unknown): string =>
      value === null || value === undefined
        ? 'NULL'
        : Array.isArray(value)
          ? `ARRAY[${value.map(literal).join(', ')}]`
          : typeof value === 'number' || typeof value === 'boolean'
            ? String(value)
            : client.escapeLiteral(String(value));
    const literals = statement.values.map(literal);
    await client.query('BEGIN');
    try {
      await client.query(`SET LOCAL plan_cache_mode = ${generic ? 'force_generic_plan' : 'force_custom_plan'}`);
      await client.query(`PREPARE recorded AS ${statement.text}`);
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE recorded(${literals.join(', ')})`);
      return rows.map((row) => row['QUERY PLAN']).join('\n');
    } finally {
      await client.query('ROLLBACK');
      await client.query('DEALLOCATE ALL');
    }
  };

  /**
   * The plans auto_explain reports for the statements inside the function that the recorded statement `name` calls,
   * run again with its recorded values on `client` in a rolled-back transaction.
   */
  const functionPlans = async (name: string): Promise<string> => {
    const statement = executor.statements.get(name);
    if (!statement) throw new Error(`no statement named ${name} was run`);
    const plans: string[] = [];
    const listener = (notice: { message?: string }) => {
      if (notice.message?.includes('Query Text')) plans.push(notice.message);
    };
    client.on('notice', listener);
    await client.query('BEGIN');
    try {
      await client.query(statement.text, statement.values);
    } finally {
      await client.query('ROLLBACK');
      client.off('notice', listener);
    }
    return plans.join('\n');
  };

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase());
    await runMigrations(url);
    // Autovacuum would analyse a table that grew this much; the statistics must stay those of the emptied table.
    await sql(url, 'ALTER TABLE queued_message SET (autovacuum_enabled = false)');
    // Earlier traffic left pages behind; the table is emptied but for one row and analysed with no column
    // statistics: what the planner sees after a quiet period or a purge.
    await sql(
      url,
      `INSERT INTO queued_message (tenant, connection_id, id, recipient_dids, payload, payload_bytes, expires_at)
       SELECT 'default', 'earlier-' || (g % 100), 'e-' || g, '{did:example:a}', repeat('x', 1800), 1800, now() + interval '1 day'
       FROM generate_series(1, 2000) g`,
    );
    await sql(url, `DELETE FROM queued_message WHERE id <> 'e-2000'`);
    await sql(url, 'VACUUM queued_message');
    await sql(url, `DELETE FROM pg_statistic WHERE starelid = 'queued_message'::regclass`);
    await sql(url, 'ANALYZE queued_message');
    // Then the backlog: one connection's messages between those of a thousand others, as they arrive.
    await sql(
      url,
      `INSERT INTO queued_message (tenant, connection_id, id, recipient_dids, payload, payload_bytes, expires_at)
       SELECT 'default', CASE WHEN g % 2 = 0 THEN 'target' ELSE 'other-' || (g % 1000) END, 'm-' || g, '{did:example:a}',
              repeat('x', 1800), 1800, now() + interval '1 day'
       FROM generate_series(1, $1::int * 2) g`,
      [BACKLOG],
    );
    executor = new RecordingExecutor({ url, poolSize: 2, queryTimeoutMs: 10_000 });
    repository = new MessageRepository(executor, { instanceId: 'test-instance' });
    client = new Client({ connectionString: url });
    await client.connect();
    // auto_explain hands the plans of the statements inside the function back as notices (LOAD: a superuser's right).
    await client.query(`LOAD 'auto_explain'`);
    await client.query(`SET auto_explain.log_min_duration = 0`);
    await client.query(`SET auto_explain.log_nested_statements = on`);
    await client.query(`SET auto_explain.log_level = notice`);
  });
  afterAll(async () => {
    await client?.end();
    await executor?.close();
    await drop?.();
  });

  const take = (deleteMessages: boolean) =>
    repository.take({
      ref: TARGET,
      limit: 100,
      limitBytes: 1e12,
      frameBudgetBytes: 1e12,
      frameOverheadBytes: 256,
      deleteMessages,
      sendingTimeoutMs: 60_000,
      claimedBy: undefined,
    });

  it('takes the oldest 100 of the connection', async () => {
    const oldest = await sql<{ id: string }>(
      url,
      `SELECT id FROM queued_message WHERE tenant = 'default' AND connection_id = 'target' ORDER BY seq LIMIT 100`,
    );
    expect((await take(false)).map((message) => message.id)).toEqual(oldest.map((row) => row.id));
    expect(await take(true)).toHaveLength(100);
    expect(await repository.countPending(TARGET)).toBe(BACKLOG - 200);
    // Run once so that its statement is recorded for the plan checks below.
    await repository.stats(TARGET);
  });

  it.each([false, true])('the take (delete: %s) reads the pending index in order inside its function', async (deleteMessages) => {
    expect(await take(deleteMessages)).toHaveLength(100);
    const text = await functionPlans('take');
    expect(text).toMatch(/Index Scan using queued_message_pending_idx on queued_message/);
    expect(text).not.toMatch(/_expir\w*_idx|queued_message_pkey|Seq Scan on queued_message|Bitmap Heap Scan on queued_message/);
    expect(text).not.toMatch(/JIT:/);
  });

  it('removeMessages deletes each id by the full key inside its function', async () => {
    const ids = (await take(false)).map((message) => message.id);
    expect(await repository.remove(TARGET, ids)).toBe(100);
    const taken = (await take(false)).map((message) => message.id);
    await repository.remove(TARGET, taken);
    const text = await functionPlans('remove');
    expect(text).toMatch(
      /Index Scan using queued_message_pkey on queued_message\s+\(cost=[^)]*\)\s+Index Cond: \(\(tenant = [^)]+\) AND \(connection_id = [^)]+\) AND \(id = [^)]+\)\)/,
    );
    expect(text).not.toMatch(/Filter: \(id = /);
  });

  it.each([false, true])('a claim (generic plan: %s) looks each key up in the primary key', async (generic) => {
    const [pending] = await sql<{ id: string }>(
      url,
      `SELECT id FROM queued_message WHERE tenant = 'default' AND connection_id = 'target' AND state = 0 ORDER BY seq LIMIT 1`,
    );
    const claimed = await repository.claim([{ ref: TARGET, id: pending.id, wantPayload: true, token: 7 }], 60_000);
    expect(claimed.map((message) => message.id)).toEqual([pending.id]);
    const text = await plan('claim', generic);
    expect(text).toMatch(KEY_LOOKUP);
    expect(text).not.toMatch(/queued_message_pending_idx|_expir\w*_idx|Seq Scan on queued_message/);
  });

  it.each([false, true])('a release (generic plan: %s) looks each key up in the primary key', async (generic) => {
    const ids = (await take(false)).map((message) => message.id);
    expect(await repository.release(TARGET, ids)).toBe(ids.length);
    const text = await plan('release', generic);
    expect(text).toMatch(KEY_LOOKUP);
    expect(text).not.toMatch(/queued_message_pending_idx|_expir\w*_idx|Seq Scan on queued_message/);
  });

  it.each([
    ['count-pending', false],
    ['count-pending', true],
    ['stats', false],
    ['stats', true],
  ])('%s (generic plan: %s) stays on an index of the connection', async (name, generic) => {
    const text = await plan(name, generic);
    expect(text).toMatch(/Index (Only )?Scan using queued_message_(pending_idx|pkey) on queued_message/);
    expect(text).not.toMatch(/_expir\w*_idx|Seq Scan on queued_message/);
  });

  it('control: on the same statistics, the take as a plain statement leaves the pending index', async () => {
    await client.query('BEGIN');
    try {
      // The function's own query, outside the function (its SET clauses not applied).
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT ctid FROM queued_message
         WHERE tenant = 'default' AND connection_id = 'target' AND state = 0 AND expires_at > now()
         ORDER BY seq LIMIT 100 FOR UPDATE SKIP LOCKED`,
      );
      expect(rows.map((row) => row['QUERY PLAN']).join('\n')).not.toMatch(/Index Scan using queued_message_pending_idx/);
    } finally {
      await client.query('ROLLBACK');
    }
  });

  it('the expiry sweep still walks its index, oldest expiry first', async () => {
    await sql(url, `UPDATE queued_message SET expires_at = now() - interval '1 second' WHERE connection_id = 'other-1'`);
    const swept = await repository.deleteExpired(10, 1, 0);
    expect(swept).toEqual([{ ref: { tenant: 'default', connectionId: 'other-1' }, messages: 10 }]);
    const text = await plan('delete-expired');
    expect(text).toMatch(/Index Scan using queued_message_expiry_sweep_idx on queued_message/);
  });
});
