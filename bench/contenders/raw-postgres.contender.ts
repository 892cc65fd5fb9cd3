import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { version as pgVersion } from 'pg/package.json';
import { sql } from '@didcomm-mpr/test-kit';
import { nowMs } from '../async-utils';
import { backlogArrivalOrder, BacklogSpec } from '../backlog';
import { closedLoop, ClosedLoopResult, drainLoop, DrainResult } from '../load-loops';
import { BENCH_RECIPIENT_DID, PayloadPool } from '../payload';
import { Contender, LoadResult } from './contender';

const TABLE = 'raw_queue';
/** Clients writing the backlog in 100-row statements, as many as the 16-client commit figure. */
const LOAD_CLIENTS = 16;
const LOAD_BATCH = 100;
const DRAIN_BATCH = 100;

/**
 * A scratch table shaped like a queue, and nothing more than a queue needs: the key, an arrival order and an index
 * that walks one connection's pending rows in that order. What this table allows on this PostgreSQL server is the
 * limit the two queues are compared with.
 */
const SCHEMA = [
  `CREATE TABLE ${TABLE} (
     connection_id text NOT NULL,
     id text NOT NULL,
     seq bigint GENERATED ALWAYS AS IDENTITY,
     state smallint NOT NULL DEFAULT 0,
     recipient_dids text[] NOT NULL,
     payload text NOT NULL,
     payload_bytes integer NOT NULL,
     received_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (connection_id, id)
   )`,
  `CREATE INDEX ${TABLE}_pending_idx ON ${TABLE} (connection_id, seq) WHERE state = 0`,
];

// Named statements: parsed once per connection, as the cheapest client would run them.
const INSERT_ONE = {
  name: 'raw_insert_one',
  text: `INSERT INTO ${TABLE} (connection_id, id, recipient_dids, payload, payload_bytes) VALUES ($1, $2, $3, $4, $5)`,
};
const INSERT_BATCH = {
  name: 'raw_insert_batch',
  text: `INSERT INTO ${TABLE} (connection_id, id, recipient_dids, payload, payload_bytes)
         SELECT c, i, $3::text[], p, octet_length(p) FROM unnest($1::text[], $2::text[], $4::text[]) AS t(c, i, p)`,
};
/**
 * The cheapest shape of a 100-row take-and-delete: the rows found in index order, deleted by their physical address
 * (a TID scan, no second index lookup). With statistics that still describe an empty table the planner estimates a
 * handful of rows for the connection and reads all of them through a bitmap scan and a sort instead (measured: 50 ms
 * a statement for a 100,000 backlog, against 1–2 ms): the drain's session turns bitmap and sequential scans off,
 * so this figure is the limit of the ordered index scan whatever the statistics say.
 */
const DRAIN = {
  name: 'raw_drain',
  text: `DELETE FROM ${TABLE} WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM ${TABLE} WHERE connection_id = $1 AND state = 0 ORDER BY seq LIMIT ${DRAIN_BATCH}))
         RETURNING id, payload`,
};
const DRAIN_SESSION = ['SET enable_bitmapscan = off', 'SET enable_seqscan = off'];

/**
 * Raw PostgreSQL through `pg` from this process: single-row autocommit INSERTs of the bench's payloads (the add
 * figures), 100-row INSERTs (the backlog), and `DELETE … RETURNING` 100 rows a statement in index order (the
 * drain), on a scratch table in a database of its own on the same server.
 */
export class RawPostgresContender implements Contender {
  readonly name = 'raw' as const;
  readonly pid = undefined;
  readonly table = TABLE;
  readonly description: string;

  private constructor(
    readonly databaseUrl: string,
    private readonly payloads: PayloadPool,
  ) {
    this.description = `\`pg\` ${pgVersion} from the bench process, table ${TABLE} (primary key (connection_id, id), pending index (connection_id, seq) WHERE state = 0), named prepared statements, autocommit; the drain: DELETE … WHERE ctid = ANY (ARRAY(SELECT ctid … ORDER BY seq LIMIT 100)) RETURNING, its session with bitmap and sequential scans off`;
  }

  static async create(databaseUrl: string, payloads: PayloadPool): Promise<RawPostgresContender> {
    for (const statement of SCHEMA) await sql(databaseUrl, statement);
    return new RawPostgresContender(databaseUrl, payloads);
  }

  async empty(): Promise<void> {
    await sql(this.databaseUrl, `TRUNCATE ${TABLE}`);
    await sql(this.databaseUrl, `ANALYZE ${TABLE}`);
  }

  async vacuum(analyze: boolean): Promise<void> {
    await sql(this.databaseUrl, analyze ? `VACUUM (ANALYZE) ${TABLE}` : `VACUUM ${TABLE}`);
  }

  async add(callers: number, connectionIds: string[], warmupMs: number, measureMs: number): Promise<ClosedLoopResult> {
    const clients = await this.connect(callers);
    const recipients = [BENCH_RECIPIENT_DID];
    const texts = this.payloads.texts;
    const bytes = texts.map((text) => Buffer.byteLength(text));
    try {
      return await closedLoop({ callers, warmupMs, measureMs }, (caller, i) => {
        const k = (caller + i) % texts.length;
        return clients[caller].query({
          ...INSERT_ONE,
          values: [connectionIds[(caller + i) % connectionIds.length], randomUUID(), recipients, texts[k], bytes[k]],
        });
      });
    } finally {
      await this.disconnect(clients);
    }
  }

  async load(spec: BacklogSpec): Promise<LoadResult> {
    const order = backlogArrivalOrder(spec);
    const clients = await this.connect(LOAD_CLIENTS);
    const texts = this.payloads.texts;
    const batches = Math.ceil(order.length / LOAD_BATCH);
    const started = nowMs();
    try {
      await Promise.all(
        clients.map(async (client, lane) => {
          for (let b = lane; b < batches; b += clients.length) {
            const connections = order.slice(b * LOAD_BATCH, (b + 1) * LOAD_BATCH);
            await client.query({
              ...INSERT_BATCH,
              values: [
                connections,
                connections.map(() => randomUUID()),
                [BENCH_RECIPIENT_DID],
                connections.map((_, j) => texts[(b * LOAD_BATCH + j) % texts.length]),
              ],
            });
          }
        }),
      );
    } finally {
      await this.disconnect(clients);
    }
    const seconds = (nowMs() - started) / 1000;
    return { rows: order.length, seconds, rate: order.length / seconds, how: `${LOAD_BATCH}-row INSERTs, ${LOAD_CLIENTS} clients` };
  }

  seed(spec: BacklogSpec): Promise<LoadResult> {
    return this.load(spec);
  }

  async removeConnection(connectionId: string): Promise<void> {
    await sql(this.databaseUrl, `DELETE FROM ${TABLE} WHERE connection_id = $1`, [connectionId]);
  }

  async drain(connectionId: string, expected: number, maxMs: number): Promise<DrainResult> {
    const [client] = await this.connect(1);
    try {
      for (const setting of DRAIN_SESSION) await client.query(setting);
      return await drainLoop({ expected, maxMs }, async () => {
        const result = await client.query<{ id: string }>({ ...DRAIN, values: [connectionId] });
        return result.rows.map((row) => row.id);
      });
    } finally {
      await this.disconnect([client]);
    }
  }

  async close(): Promise<void> {
    // Nothing held between figures: each one opens and ends its own clients.
  }

  private async connect(count: number): Promise<Client[]> {
    const clients = Array.from(
      { length: count },
      () => new Client({ connectionString: this.databaseUrl, connectionTimeoutMillis: 10_000 }),
    );
    for (const client of clients) client.on('error', () => undefined);
    await Promise.all(clients.map((client) => client.connect()));
    return clients;
  }

  private async disconnect(clients: Client[]): Promise<void> {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
  }
}
