import { MigrationInterface, QueryRunner } from 'typeorm';

/** The take's statement body, for the action (DELETE or UPDATE) that follows the choice of rows. */
function takeQuery(action: string): string {
  return `
      RETURN QUERY
      WITH candidates AS (
        SELECT q.ctid, q.seq, q.payload_bytes, octet_length(q.id) AS id_bytes FROM queued_message q
        WHERE q.tenant = p_tenant AND q.connection_id = p_connection_id AND q.state = 0 AND q.expires_at > now()
          AND (p_recipient_did IS NULL OR p_recipient_did = ANY(q.recipient_dids))
        ORDER BY q.seq
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
      ), sized AS (
        SELECT c.ctid,
               row_number() OVER w AS n,
               sum(c.payload_bytes) OVER w AS running_bytes,
               sum(c.payload_bytes + p_frame_overhead + 6 * c.id_bytes) OVER w AS running_frame
        FROM candidates c
        WINDOW w AS (ORDER BY c.seq ROWS UNBOUNDED PRECEDING)
      ), chosen AS (
        SELECT s.ctid FROM sized s WHERE s.n = 1 OR (s.running_bytes <= p_limit_bytes AND s.running_frame <= p_frame_budget)
      ), done AS (
        ${action}
      )
      SELECT d.id, d.received_at, d.payload, d.seq FROM done d;`;
}

/**
 * The take as a function whose plan cannot flip. Its rows must come in the order of the pending index
 * (tenant, connection_id, seq) WHERE state = 0, read from the connection's oldest message on: LIMIT 100 then stops
 * after 100 index entries, whatever the queue holds. But the planner picks that scan only when it knows the
 * connection has many rows. On the statistics of an empty or much smaller table (a new table, or a backlog that
 * arrived since the last ANALYZE) it expects one or two rows, and every path that finds them costs about the same:
 * it has been seen to walk the expiry index (every unexpired row of the table) or the primary key (every row of the
 * connection) and sort what it found. Measured, a take of 100 from a backlog of 100,000 went from 3 ms to 48–97 ms,
 * and the drain from 7,400–18,000 to 950–2,050 messages a second. The function's SET clauses hold for its own
 * statements only: no
 * sequential scan, no bitmap scan, and a sort only where nothing else gives the order. Its plan is then the ordered
 * index scan, with TID scans back to the chosen rows, on any statistics. PL/pgSQL keeps the plan, as a named
 * prepared statement does.
 *
 * `jit = off` too: a switched-off plan type is not removed but priced at 10^10, and the sort of the running sums
 * (which nothing else can replace) carries that price into the plan's total, far above `jit_above_cost`. With JIT
 * available (Debian's PostgreSQL has it) every take then compiled its plan first: 126 ms a take of an empty queue,
 * measured, and 55 messages a second where a drain of small queues does 9,000 without it.
 *
 * CREATE OR REPLACE: a database that ran an earlier build of this function under another migration name keeps working.
 */
export class TakeInIndexOrder1764500000000 implements MigrationInterface {
  name = 'TakeInIndexOrder1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION take_pending_messages(
        p_tenant text, p_connection_id text, p_recipient_did text, p_limit int, p_limit_bytes bigint,
        p_frame_budget bigint, p_frame_overhead int, p_delete boolean, p_sending_timeout_ms bigint,
        p_claimed_by bigint, p_instance_id text)
      RETURNS TABLE (taken_id text, taken_received_at timestamptz, taken_payload text, taken_seq bigint)
      LANGUAGE plpgsql
      SET enable_seqscan = off
      SET enable_bitmapscan = off
      SET enable_sort = off
      SET jit = off
      AS $fn$
      BEGIN
        IF p_delete THEN
          ${takeQuery(
            `DELETE FROM queued_message m USING chosen WHERE m.ctid = chosen.ctid
             RETURNING m.id, m.received_at, m.payload, m.seq`,
          )}
        ELSE
          ${takeQuery(
            `UPDATE queued_message m
             SET state = 1, sending_until = now() + p_sending_timeout_ms * interval '1 millisecond',
                 claimed_by = p_claimed_by, claimed_instance = p_instance_id
             FROM chosen WHERE m.ctid = chosen.ctid
             RETURNING m.id, m.received_at, m.payload, m.seq`,
          )}
        END IF;
      END
      $fn$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `DROP FUNCTION take_pending_messages(text, text, text, int, bigint, bigint, int, boolean, bigint, bigint, text)`,
    );
  }
}
