import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, AppConfig, ConnectionRef, refKey } from '../../config';
import { DatabaseExecutor, Row } from '../database.executor';

export interface NewMessage {
  ref: ConnectionRef;
  id: string;
  recipientDids: string[];
  /** The payload's JSON text, stored verbatim. */
  payload: string;
  payloadBytes: number;
  /** Insert it already sending, claimed for this live session token, instead of pending. */
  claimedBy?: number;
  /** Life from now; the message is neither returned nor counted after it. */
  ttlMs: number;
}

/** Per-connection limits an insert must keep (expired messages do not count). */
export interface QueueQuota {
  maxMessages: number;
  maxBytes: number;
}

/** A message the quota refused: the connection's queue would hold this many messages and bytes with it. */
export interface RefusedMessage {
  ref: ConnectionRef;
  id: string;
  messagesAfter: number;
  bytesAfter: number;
}

export interface InsertOutcome {
  inserted: InsertedMessage[];
  refused: RefusedMessage[];
}

/** What a connection's queue holds, expired messages excluded. */
export interface ConnectionQueueStats {
  pending: number;
  sending: number;
  bytes: number;
  oldestReceivedAt: Date | null;
}

/** Messages deleted by one expiry sweep, per connection. */
export interface ExpiredCount {
  ref: ConnectionRef;
  messages: number;
}

export interface InsertedMessage {
  ref: ConnectionRef;
  id: string;
  receivedAt: Date;
  /** Inserted already sending (claimed for the live session it was meant for). */
  claimed: boolean;
}

export interface StoredMessage {
  ref: ConnectionRef;
  id: string;
  receivedAt: Date;
  /** Null when the caller did not ask for the payload. */
  payload: string | null;
}

export interface TakeQuery {
  ref: ConnectionRef;
  recipientDid?: string;
  limit: number;
  /** Summed payload bytes stay within this, except that the oldest message always goes. */
  limitBytes: number;
  /**
   * Summed payload bytes, plus `frameOverheadBytes` and the id's worst-case escaped length per message, stay
   * within this (the response frame).
   */
  frameBudgetBytes: number;
  frameOverheadBytes: number;
  deleteMessages: boolean;
  sendingTimeoutMs: number;
  /** Token of the connection's live session, if one is held: the taken messages are claimed for it. */
  claimedBy: number | undefined;
}

export interface ClaimRequest {
  ref: ConnectionRef;
  id: string;
  wantPayload: boolean;
  /** Token of the live session the message is claimed for. */
  token: number;
}

export interface QueueTotals {
  pending: number;
  /** Payload bytes of pending and sending messages. */
  bytes: number;
  oldestPendingReceivedAt: Date | null;
}

const DEADLOCK_DETECTED = '40P01';
const MAX_DEADLOCK_ATTEMPTS = 3;
const STATE_PENDING = 0;
const STATE_SENDING = 1;
/** Key of the advisory lock that lets one instance of the fleet sweep expired messages at a time. */
const EXPIRY_SWEEP_LOCK = 0x6d70_7201;

/** Encodes a text[] value as a PostgreSQL array literal, so a whole batch of arrays travels as one text[]. */
function arrayLiteral(values: string[]): string {
  return `{${values.map((value) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

/** A row's tenant and connection_id as the ref they make. */
function refOf(row: { tenant: string; connection_id: string }): ConnectionRef {
  return { tenant: row.tenant, connectionId: row.connection_id };
}

/** Released messages per connection: how many went back to pending, and the newest of them (a push names it). */
export interface ReleasedCount {
  ref: ConnectionRef;
  released: number;
  lastMessageId: string;
}

/**
 * All SQL of the queue (queued_message and queue_usage), through the `DatabaseExecutor`: every statement has its
 * deadline, outages fail fast, and every driver error leaves as a `StorageException`. Every key leads with the
 * connection's tenant: no statement reads or changes a connection's rows by its id alone.
 */
@Injectable()
export class MessageRepository {
  /** Every claim made here records this instance, so that a survivor can release them if it dies. */
  private readonly instanceId: string;

  constructor(
    private readonly db: DatabaseExecutor,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'instanceId'>,
  ) {
    this.instanceId = config.instanceId;
  }

  private query<T extends Row>(name: string, text: string, values: unknown[]): Promise<T[]> {
    return this.db.query<T>(name, text, values);
  }

  /**
   * One statement and one commit for the whole batch; rows whose (connection, id) exists are skipped.
   * Two batches holding the same keys in opposite orders (a client retrying messageIds while the first
   * attempt is in flight) deadlock and PostgreSQL aborts one; the aborted statement changed nothing, so it
   * runs again, and the keys the other batch committed are then skipped as already queued.
   */
  async insertMany(messages: NewMessage[], sendingTimeoutMs: number, quota: QueueQuota): Promise<InsertOutcome> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.insertOnce(messages, sendingTimeoutMs, quota);
      } catch (error) {
        const sqlState = ((error as Error).cause as { code?: unknown } | undefined)?.code;
        if (sqlState !== DEADLOCK_DETECTED || attempt >= MAX_DEADLOCK_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * queue_usage holds, per connection, an upper bound of its messages and bytes: inserts raise it, removals leave it
   * alone (an add and the removal of the previous message then never wait on the same row). The fast path raises
   * the bound by the batch's counts and inserts, in one short statement, the messages of every connection whose
   * raised bound stays within the limits: nothing is counted, and the statement is as cheap to plan as a plain
   * insert (measured: one statement doing the whole check cost ~1 ms of planning per batch, which tripled live
   * latency). The messages of a connection whose bound would pass a limit go through `checkedInsert`, which counts
   * that connection's live messages and resets its bound. An active connection is counted about once per
   * MAX_QUEUE_MESSAGES adds, a full one at each add. The bound may overstate (duplicates, crashes), never usefully
   * understate: with several instances, a reset can miss a batch another instance committed meanwhile, which is the
   * overshoot the quota allows (what concurrent batches of other instances add to the connection).
   */
  private async insertOnce(messages: NewMessage[], sendingTimeoutMs: number, quota: QueueQuota): Promise<InsertOutcome> {
    const rows = await this.query<{
      tenant: string;
      connection_id: string;
      id: string | null;
      received_at: Date | null;
      state: number | null;
    }>(
      'insert-many',
      `WITH bound AS (
         INSERT INTO queue_usage AS u (tenant, connection_id, messages, bytes)
         SELECT tn, c, count(*), sum(b) FROM unnest($12::text[], $1::text[], $5::int[]) AS t(tn, c, b) GROUP BY tn, c ORDER BY tn, c
         ON CONFLICT (tenant, connection_id) DO UPDATE SET messages = u.messages + excluded.messages, bytes = u.bytes + excluded.bytes
         RETURNING tenant, connection_id, messages <= $10 AND bytes <= $11 AS fits
       ), inserted AS (
         INSERT INTO queued_message (tenant, connection_id, id, recipient_dids, payload, payload_bytes, state, sending_until, claimed_by, claimed_instance, expires_at)
         SELECT t.tn, t.c, t.i, t.r::text[], t.p, t.b,
                CASE WHEN t.s IS NOT NULL THEN ${STATE_SENDING} ELSE ${STATE_PENDING} END,
                CASE WHEN t.s IS NOT NULL THEN now() + $7 * interval '1 millisecond' END,
                t.s,
                CASE WHEN t.s IS NOT NULL THEN $8 END,
                now() + t.ttl * interval '1 millisecond'
         FROM unnest($12::text[], $1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $9::bigint[])
                WITH ORDINALITY AS t(tn, c, i, r, p, b, s, ttl, ord)
         JOIN bound ON bound.tenant = t.tn AND bound.connection_id = t.c AND bound.fits
         ORDER BY t.ord -- seq follows the batch order
         ON CONFLICT (tenant, connection_id, id) DO NOTHING
         RETURNING tenant, connection_id, id, received_at, state
       )
       SELECT tenant, connection_id, id, received_at, state FROM inserted
       UNION ALL
       SELECT tenant, connection_id, NULL, NULL, NULL FROM bound WHERE NOT fits`,
      this.insertParams(messages, sendingTimeoutMs, quota),
    );
    const outcome: InsertOutcome = { inserted: [], refused: [] };
    const toCheck = new Set<string>();
    for (const row of rows) {
      if (row.id === null) toCheck.add(refKey(refOf(row)));
      else
        outcome.inserted.push({ ref: refOf(row), id: row.id, receivedAt: row.received_at as Date, claimed: row.state === STATE_SENDING });
    }
    if (toCheck.size === 0) return outcome;
    const checked = await this.checkedInsert(
      messages.filter((m) => toCheck.has(refKey(m.ref))),
      sendingTimeoutMs,
      quota,
    );
    outcome.inserted.push(...checked.inserted);
    outcome.refused.push(...checked.refused);
    return outcome;
  }

  /** The parameters both insert statements take, in the same order ($1..$12). */
  private insertParams(messages: NewMessage[], sendingTimeoutMs: number, quota: QueueQuota): unknown[] {
    return [
      messages.map((m) => m.ref.connectionId),
      messages.map((m) => m.id),
      messages.map((m) => arrayLiteral(m.recipientDids)),
      messages.map((m) => m.payload),
      messages.map((m) => m.payloadBytes),
      messages.map((m) => m.claimedBy ?? null),
      sendingTimeoutMs,
      this.instanceId,
      messages.map((m) => m.ttlMs),
      quota.maxMessages,
      quota.maxBytes,
      messages.map((m) => m.ref.tenant),
    ];
  }

  /**
   * The slow path: counts the live (unexpired) messages of connections whose bound passed a limit, checks the
   * batch's messages against that count one by one in batch order (those that would pass a limit are refused and
   * not inserted), inserts the others and resets the bound to count + inserted. A message already queued under its
   * id is not inserted again and never refused (a retry of a stored add succeeds); it does count towards its
   * batch's running sums, which only makes the check stricter for the rest, as does a refused message for the
   * smaller ones behind it.
   */
  private async checkedInsert(messages: NewMessage[], sendingTimeoutMs: number, quota: QueueQuota): Promise<InsertOutcome> {
    const rows = await this.query<{
      tenant: string;
      connection_id: string;
      id: string;
      received_at: Date | null;
      state: number | null;
      refused: boolean;
      messages_after: string | null;
      bytes_after: string | null;
    }>(
      'checked-insert',
      `WITH input AS (
         SELECT t.* FROM unnest($12::text[], $1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $9::bigint[])
                         WITH ORDINALITY AS t(tn, c, i, r, p, b, s, ttl, ord)
       ), usage AS (
         SELECT batch.tn, batch.c, live.n, live.b
         FROM (SELECT DISTINCT tn, c FROM input) batch
         -- LATERAL: the connection's own rows by its key, whatever the prepared (generic) plan thinks of the table.
         CROSS JOIN LATERAL (
           SELECT count(*) AS n, coalesce(sum(q.payload_bytes), 0) AS b FROM queued_message q
           WHERE q.tenant = batch.tn AND q.connection_id = batch.c AND q.expires_at > now()
         ) live
       ), ranked AS (
         SELECT input.*,
                usage.n + count(*) OVER w AS messages_after,
                usage.b + sum(input.b) OVER w AS bytes_after
         FROM input JOIN usage ON usage.tn = input.tn AND usage.c = input.c
         WINDOW w AS (PARTITION BY input.tn, input.c ORDER BY input.ord ROWS UNBOUNDED PRECEDING)
       ), inserted AS (
         INSERT INTO queued_message (tenant, connection_id, id, recipient_dids, payload, payload_bytes, state, sending_until, claimed_by, claimed_instance, expires_at)
         SELECT tn, c, i, r::text[], p, b,
                CASE WHEN s IS NOT NULL THEN ${STATE_SENDING} ELSE ${STATE_PENDING} END,
                CASE WHEN s IS NOT NULL THEN now() + $7 * interval '1 millisecond' END,
                s,
                CASE WHEN s IS NOT NULL THEN $8 END,
                now() + ttl * interval '1 millisecond'
         FROM ranked
         WHERE messages_after <= $10 AND bytes_after <= $11
         ORDER BY ord -- seq follows the batch order
         ON CONFLICT (tenant, connection_id, id) DO NOTHING
         RETURNING tenant, connection_id, id, received_at, state, payload_bytes
       ), bound_reset AS (
         -- The bound becomes the count plus what this statement inserted.
         INSERT INTO queue_usage AS u (tenant, connection_id, messages, bytes)
         SELECT usage.tn, usage.c, usage.n + coalesce(ins.n, 0), usage.b + coalesce(ins.b, 0)
         FROM usage LEFT JOIN (SELECT tenant, connection_id, count(*) AS n, sum(payload_bytes) AS b FROM inserted GROUP BY tenant, connection_id) ins
           ON ins.tenant = usage.tn AND ins.connection_id = usage.c
         ORDER BY usage.tn, usage.c
         ON CONFLICT (tenant, connection_id) DO UPDATE SET messages = excluded.messages, bytes = excluded.bytes
       )
       SELECT tenant, connection_id, id, received_at, state, false AS refused, NULL::bigint AS messages_after, NULL::bigint AS bytes_after
       FROM inserted
       UNION ALL
       SELECT tn, c, i, NULL, NULL, true, messages_after, bytes_after FROM ranked
       WHERE (messages_after > $10 OR bytes_after > $11)
         -- A refused retry of a message already queued under its id is no refusal: the add succeeded before. A
         -- scalar subquery, run only for refused rows, is always a primary-key probe; NOT EXISTS over the whole
         -- batch became a hash anti-join over the whole table in the prepared (generic) plan, planned while the
         -- table was small (measured: 2.5x slower adds once the table held 100,000 messages).
         AND (SELECT true FROM queued_message q WHERE q.tenant = ranked.tn AND q.connection_id = ranked.c AND q.id = ranked.i) IS NULL`,
      this.insertParams(messages, sendingTimeoutMs, quota),
    );
    const outcome: InsertOutcome = { inserted: [], refused: [] };
    for (const row of rows) {
      if (row.refused) {
        outcome.refused.push({
          ref: refOf(row),
          id: row.id,
          messagesAfter: Number(row.messages_after),
          bytesAfter: Number(row.bytes_after),
        });
      } else {
        outcome.inserted.push({ ref: refOf(row), id: row.id, receivedAt: row.received_at as Date, claimed: row.state === STATE_SENDING });
      }
    }
    return outcome;
  }

  /**
   * Takes the oldest pending messages in one statement: rows are locked with SKIP LOCKED (two takes never
   * get the same message), cut to the byte budgets by running sums, then marked sending or deleted. The statement
   * is the function `take_pending_messages` (migration TakeInIndexOrder1764500000000), whose plan reads the pending
   * index in order whatever the table's statistics say.
   */
  async take(query: TakeQuery): Promise<StoredMessage[]> {
    const rows = await this.query<{ id: string; received_at: Date; payload: string; seq: string }>(
      'take',
      `SELECT taken_id AS id, taken_received_at AS received_at, taken_payload AS payload, taken_seq AS seq
       FROM take_pending_messages($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        query.ref.tenant,
        query.ref.connectionId,
        query.recipientDid ?? null,
        query.limit,
        query.limitBytes,
        query.frameBudgetBytes,
        query.frameOverheadBytes,
        query.deleteMessages,
        query.sendingTimeoutMs,
        query.deleteMessages ? null : (query.claimedBy ?? null),
        this.instanceId,
      ],
    );
    // RETURNING does not keep the order of the rows it changed.
    rows.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
    return rows.map((row) => ({ ref: query.ref, id: row.id, receivedAt: row.received_at, payload: row.payload }));
  }

  async countPending(ref: ConnectionRef, recipientDid?: string): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'count-pending',
      `SELECT count(*)::int AS n FROM queued_message
       WHERE tenant = $3 AND connection_id = $1 AND state = ${STATE_PENDING} AND expires_at > now()
         AND ($2::text IS NULL OR $2::text = ANY(recipient_dids))`,
      [ref.connectionId, recipientDid ?? null, ref.tenant],
    );
    return rows[0].n;
  }

  /**
   * Deletes the listed ids of this connection only; returns how many existed. The function `remove_messages`
   * (migration RemoveByKey1764600000000) deletes them one by one by the full key, a plan no statistics can change.
   */
  async remove(ref: ConnectionRef, ids: string[]): Promise<number> {
    const rows = await this.query<{ n: number }>('remove', `SELECT remove_messages($3, $1, $2::text[]) AS n`, [
      ref.connectionId,
      ids,
      ref.tenant,
    ]);
    return rows[0].n;
  }

  async removeAll(ref: ConnectionRef, recipientDid?: string): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'remove-all',
      `WITH d AS (DELETE FROM queued_message
                  WHERE tenant = $3 AND connection_id = $1 AND ($2::text IS NULL OR $2::text = ANY(recipient_dids)) RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [ref.connectionId, recipientDid ?? null, ref.tenant],
    );
    return rows[0].n;
  }

  /**
   * Marks the given messages sending, each for its session token, if (and only if) they are still pending, for
   * live delivery; one statement for many connections. Returns the ones this call moved: a concurrent take or
   * another claim cannot also get them.
   */
  async claim(requests: ClaimRequest[], sendingTimeoutMs: number): Promise<StoredMessage[]> {
    const rows = await this.query<{ tenant: string; connection_id: string; id: string; received_at: Date; payload: string | null }>(
      'claim',
      // Each requested key is looked up on its own (LATERAL … LIMIT 1: the requests drive, the primary key answers;
      // the inner query names no state, so no partial index can serve it) and the row is then updated by its
      // address. As a plain join, on statistics that expect a row or two in the table, the planner walked the whole
      // pending index and matched every row against the requests (measured: 350–450 ms a claim beside a backlog of
      // 200,000). A row changed since it was found (taken, claimed, removed) fails the re-check and is not claimed.
      `UPDATE queued_message m
       SET state = ${STATE_SENDING}, sending_until = now() + $5 * interval '1 millisecond', claimed_by = found.token,
           claimed_instance = $6
       FROM (SELECT t.want_payload, t.token, q.ctid AS row_ctid
             FROM unnest($7::text[], $1::text[], $2::text[], $3::bool[], $4::bigint[]) AS t(tn, c, i, want_payload, token)
             CROSS JOIN LATERAL (SELECT ctid FROM queued_message q WHERE q.tenant = t.tn AND q.connection_id = t.c AND q.id = t.i LIMIT 1) q
            ) found
       WHERE m.ctid = found.row_ctid AND m.state = ${STATE_PENDING} AND m.expires_at > now()
       RETURNING m.tenant, m.connection_id, m.id, m.received_at, CASE WHEN found.want_payload THEN m.payload END AS payload`,
      [
        requests.map((r) => r.ref.connectionId),
        requests.map((r) => r.id),
        requests.map((r) => r.wantPayload),
        requests.map((r) => r.token),
        sendingTimeoutMs,
        this.instanceId,
        requests.map((r) => r.ref.tenant),
      ],
    );
    return rows.map((row) => ({ ref: refOf(row), id: row.id, receivedAt: row.received_at, payload: row.payload }));
  }

  /** Gives claimed messages back (they could not be sent); only rows still sending are touched. */
  async release(ref: ConnectionRef, ids: string[]): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'release',
      // Found key by key, then updated by address, as in `claim`: a list of ids in one condition may be left out of the
      // index condition (see migration RemoveByKey1764600000000).
      `WITH u AS (
         UPDATE queued_message m SET state = ${STATE_PENDING}, sending_until = NULL, claimed_by = NULL, claimed_instance = NULL
         FROM (SELECT q.ctid AS row_ctid
               FROM unnest($2::text[]) AS t(i)
               CROSS JOIN LATERAL (SELECT ctid FROM queued_message q WHERE q.tenant = $3 AND q.connection_id = $1 AND q.id = t.i LIMIT 1) q
              ) found
         WHERE m.ctid = found.row_ctid AND m.state = ${STATE_SENDING}
         RETURNING 1)
       SELECT count(*)::int AS n FROM u`,
      [ref.connectionId, ids, ref.tenant],
    );
    return rows[0].n;
  }

  /**
   * A new live session (token `token`) now holds the connection: what was in flight to older sessions, or was
   * taken, is pending again. Claims of this session or of an even newer one are kept.
   */
  async releaseForNewSession(ref: ConnectionRef, token: number): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'release-for-new-session',
      `WITH u AS (UPDATE queued_message SET state = ${STATE_PENDING}, sending_until = NULL, claimed_by = NULL, claimed_instance = NULL
                  WHERE tenant = $3 AND connection_id = $1 AND state = ${STATE_SENDING} AND (claimed_by IS NULL OR claimed_by < $2)
                  RETURNING 1)
       SELECT count(*)::int AS n FROM u`,
      [ref.connectionId, token, ref.tenant],
    );
    return rows[0].n;
  }

  /**
   * These sessions ended: their claims, and what was taken while no session was held, are pending again. A
   * successor's claims are left alone, however late this runs. One statement for many sessions, so a socket
   * that held thousands of them does not take the pool away from everyone else when it closes.
   */
  async releaseForEndedSessions(sessions: { ref: ConnectionRef; token: number }[]): Promise<ReleasedCount[]> {
    // Per connection: how many went back to pending and the newest of them (the push that may follow names it).
    const rows = await this.query<{ tenant: string; connection_id: string; n: number; last_id: string }>(
      'release-for-ended-sessions',
      `WITH ended AS (SELECT * FROM unnest($3::text[], $1::text[], $2::bigint[]) AS t(tenant, connection_id, token)),
       u AS (UPDATE queued_message m SET state = ${STATE_PENDING}, sending_until = NULL, claimed_by = NULL, claimed_instance = NULL
             FROM ended
             WHERE m.tenant = ended.tenant AND m.connection_id = ended.connection_id AND m.state = ${STATE_SENDING}
               AND (m.claimed_by IS NULL OR m.claimed_by = ended.token)
             RETURNING m.tenant, m.connection_id, m.id, m.seq)
       SELECT tenant, connection_id, count(*)::int AS n, (array_agg(id ORDER BY seq DESC))[1] AS last_id FROM u GROUP BY tenant, connection_id`,
      [sessions.map((s) => s.ref.connectionId), sessions.map((s) => s.token), sessions.map((s) => s.ref.tenant)],
    );
    return rows.map((row) => ({ ref: refOf(row), released: row.n, lastMessageId: row.last_id }));
  }

  /** An instance died (its lease expired): everything claimed through it is pending again. */
  async releaseForDeadInstance(instanceId: string): Promise<ReleasedCount[]> {
    const rows = await this.query<{ tenant: string; connection_id: string; n: number; last_id: string }>(
      'release-for-dead-instance',
      `WITH u AS (UPDATE queued_message SET state = ${STATE_PENDING}, sending_until = NULL, claimed_by = NULL, claimed_instance = NULL
                  WHERE state = ${STATE_SENDING} AND claimed_instance = $1 RETURNING tenant, connection_id, id, seq)
       SELECT tenant, connection_id, count(*)::int AS n, (array_agg(id ORDER BY seq DESC))[1] AS last_id FROM u GROUP BY tenant, connection_id`,
      [instanceId],
    );
    return rows.map((row) => ({ ref: refOf(row), released: row.n, lastMessageId: row.last_id }));
  }

  /** Returns at most `limit` messages whose acknowledgement deadline passed to pending. */
  async releaseExpired(limit: number): Promise<StoredMessage[]> {
    const rows = await this.query<{ tenant: string; connection_id: string; id: string; received_at: Date }>(
      'release-expired',
      `WITH expired AS (
         SELECT tenant, connection_id, id FROM queued_message
         WHERE state = ${STATE_SENDING} AND sending_until < now() AND expires_at > now()
         ORDER BY sending_until
         LIMIT $1
         FOR UPDATE SKIP LOCKED
       )
       UPDATE queued_message m SET state = ${STATE_PENDING}, sending_until = NULL, claimed_by = NULL, claimed_instance = NULL
       FROM expired WHERE m.tenant = expired.tenant AND m.connection_id = expired.connection_id AND m.id = expired.id
       RETURNING m.tenant, m.connection_id, m.id, m.received_at`,
      [limit],
    );
    return rows.map((row) => ({ ref: refOf(row), id: row.id, receivedAt: row.received_at, payload: null }));
  }

  async totals(): Promise<QueueTotals> {
    const rows = await this.query<{ pending: number; bytes: string; oldest: Date | null }>(
      'totals',
      `SELECT count(*) FILTER (WHERE state = ${STATE_PENDING})::int AS pending,
              coalesce(sum(payload_bytes), 0)::bigint AS bytes,
              min(received_at) FILTER (WHERE state = ${STATE_PENDING}) AS oldest
       FROM queued_message WHERE expires_at > now()`,
      [],
    );
    return { pending: rows[0].pending, bytes: Number(rows[0].bytes), oldestPendingReceivedAt: rows[0].oldest };
  }

  async stats(ref: ConnectionRef): Promise<ConnectionQueueStats> {
    const rows = await this.query<{ pending: number; sending: number; bytes: string; oldest: Date | null }>(
      'stats',
      `SELECT count(*) FILTER (WHERE state = ${STATE_PENDING})::int AS pending,
              count(*) FILTER (WHERE state = ${STATE_SENDING})::int AS sending,
              coalesce(sum(payload_bytes), 0)::bigint AS bytes,
              min(received_at) AS oldest
       FROM queued_message WHERE tenant = $2 AND connection_id = $1 AND expires_at > now()`,
      [ref.connectionId, ref.tenant],
    );
    return { pending: rows[0].pending, sending: rows[0].sending, bytes: Number(rows[0].bytes), oldestReceivedAt: rows[0].oldest };
  }

  /**
   * Deletes expired messages, oldest expiry first, in statements of at most `batchSize` rows, while this instance
   * holds the fleet's sweep lock (an advisory lock on one pooled connection; if another instance holds it, this
   * returns at once with nothing). Each batch is its own short statement, with a pause between batches, so a large
   * backlog never holds locks or the connection long enough to slow live traffic. Stops after `maxBatches`.
   */
  async deleteExpired(batchSize: number, maxBatches: number, pauseMs: number): Promise<ExpiredCount[] | undefined> {
    let locked = false;
    return this.db.withConnection(
      async (connection) => {
        locked = (await connection.query<{ ok: boolean }>('expiry-lock', 'SELECT pg_try_advisory_lock($1) AS ok', [EXPIRY_SWEEP_LOCK]))[0]
          .ok;
        if (!locked) return undefined;
        const perConnection = new Map<string, ExpiredCount>();
        for (let batch = 0; batch < maxBatches; batch++) {
          const rows = await connection.query<{ tenant: string; connection_id: string; n: number }>(
            'delete-expired',
            `WITH d AS (
               DELETE FROM queued_message m USING (
                 SELECT ctid FROM queued_message WHERE (expires_at AT TIME ZONE 'UTC') <= (now() AT TIME ZONE 'UTC')
                 ORDER BY (expires_at AT TIME ZONE 'UTC') LIMIT $1 FOR UPDATE SKIP LOCKED
               ) e
               WHERE m.ctid = e.ctid
               RETURNING m.tenant, m.connection_id
             )
             SELECT tenant, connection_id, count(*)::int AS n FROM d GROUP BY tenant, connection_id`,
            [batchSize],
          );
          let deleted = 0;
          for (const row of rows) {
            const ref = refOf(row);
            const counted = perConnection.get(refKey(ref));
            if (counted) counted.messages += row.n;
            else perConnection.set(refKey(ref), { ref, messages: row.n });
            deleted += row.n;
          }
          if (deleted < batchSize) break;
          await new Promise((resolve) => setTimeout(resolve, pauseMs));
        }
        return [...perConnection.values()];
      },
      // A failed unlock destroys the connection (the executor's rule), so the lock never stays on a pooled one.
      async (connection) => {
        if (locked) await connection.query('expiry-unlock', 'SELECT pg_advisory_unlock($1)', [EXPIRY_SWEEP_LOCK]);
      },
    );
  }
}
