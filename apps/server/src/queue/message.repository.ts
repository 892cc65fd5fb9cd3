import { Inject, Injectable } from '@nestjs/common';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { StorageException } from '../database/storage.exception';

export interface NewMessage {
  connectionId: string;
  id: string;
  recipientDids: string[];
  /** The payload's JSON text, stored verbatim. */
  payload: string;
  payloadBytes: number;
  /** Insert it already sending, claimed for this live session token, instead of pending. */
  claimedBy?: number;
}

export interface InsertedMessage {
  connectionId: string;
  id: string;
  receivedAt: Date;
  /** Inserted already sending (claimed for the live session it was meant for). */
  claimed: boolean;
}

export interface StoredMessage {
  connectionId: string;
  id: string;
  receivedAt: Date;
  /** Null when the caller did not ask for the payload. */
  payload: string | null;
}

export interface TakeQuery {
  connectionId: string;
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
  connectionId: string;
  id: string;
  wantPayload: boolean;
  /** Token of the live session the message is claimed for. */
  token: number;
}

export interface QueueTotals {
  pending: number;
  oldestPendingReceivedAt: Date | null;
}

const DEADLOCK_DETECTED = '40P01';
const MAX_DEADLOCK_ATTEMPTS = 3;
const STATE_PENDING = 0;
const STATE_SENDING = 1;

/** Encodes a text[] value as a PostgreSQL array literal, so a whole batch of arrays travels as one text[]. */
function arrayLiteral(values: string[]): string {
  return `{${values.map((value) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

type Row = Record<string, unknown>;

/** All SQL of the queue. Every driver error leaves here as a `StorageException`. */
@Injectable()
export class MessageRepository {
  /**
   * The pool TypeORM opened. The hot path talks to it directly: named statements are parsed and planned
   * once per connection, and results come back as plain rows whatever the statement's command.
   */
  private readonly pool: Pool;
  /** Every claim made here records this instance, so that a survivor can release them if it dies. */
  private readonly instanceId: string;

  constructor(
    @Inject(DataSource) dataSource: DataSource,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'instanceId'>,
  ) {
    this.pool = (dataSource.driver as unknown as { master: Pool }).master;
    this.instanceId = config.instanceId;
  }

  private async query<T extends Row>(name: string, text: string, values: unknown[]): Promise<T[]> {
    try {
      return (await this.pool.query<T>({ name, text, values })).rows;
    } catch (error) {
      throw StorageException.from(error);
    }
  }

  /**
   * One statement and one commit for the whole batch; rows whose (connection, id) exists are skipped.
   * Two batches holding the same keys in opposite orders (a client retrying messageIds while the first
   * attempt is in flight) deadlock and PostgreSQL aborts one; the aborted statement changed nothing, so it
   * runs again, and the keys the other batch committed are then skipped as already queued.
   */
  async insertMany(messages: NewMessage[], sendingTimeoutMs: number): Promise<InsertedMessage[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.insertOnce(messages, sendingTimeoutMs);
      } catch (error) {
        const sqlState = ((error as Error).cause as { code?: unknown } | undefined)?.code;
        if (sqlState !== DEADLOCK_DETECTED || attempt >= MAX_DEADLOCK_ATTEMPTS) throw error;
      }
    }
  }

  private async insertOnce(messages: NewMessage[], sendingTimeoutMs: number): Promise<InsertedMessage[]> {
    const rows = await this.query<{ connection_id: string; id: string; received_at: Date; state: number }>(
      'insert-many',
      `INSERT INTO queued_message (connection_id, id, recipient_dids, payload, payload_bytes, state, sending_until, claimed_by, claimed_instance)
       SELECT t.c, t.i, t.r::text[], t.p, t.b,
              CASE WHEN t.s IS NOT NULL THEN ${STATE_SENDING} ELSE ${STATE_PENDING} END,
              CASE WHEN t.s IS NOT NULL THEN now() + $7 * interval '1 millisecond' END,
              t.s,
              CASE WHEN t.s IS NOT NULL THEN $8 END
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[]) AS t(c, i, r, p, b, s)
       ON CONFLICT (connection_id, id) DO NOTHING
       RETURNING connection_id, id, received_at, state`,
      [
        messages.map((m) => m.connectionId),
        messages.map((m) => m.id),
        messages.map((m) => arrayLiteral(m.recipientDids)),
        messages.map((m) => m.payload),
        messages.map((m) => m.payloadBytes),
        messages.map((m) => m.claimedBy ?? null),
        sendingTimeoutMs,
        this.instanceId,
      ],
    );
    return rows.map((row) => ({ connectionId: row.connection_id, id: row.id, receivedAt: row.received_at, claimed: row.state === STATE_SENDING }));
  }

  /**
   * Takes the oldest pending messages in one statement: rows are locked with SKIP LOCKED (two takes never
   * get the same message), cut to the byte budgets by running sums, then marked sending or deleted.
   */
  async take(query: TakeQuery): Promise<StoredMessage[]> {
    // The locked rows are addressed by ctid: stable while the row lock is held, and a TID scan instead of
    // a second primary-key lookup per row.
    const action = query.deleteMessages
      ? `DELETE FROM queued_message m USING chosen WHERE m.ctid = chosen.ctid`
      : `UPDATE queued_message m
         SET state = ${STATE_SENDING}, sending_until = now() + $7 * interval '1 millisecond', claimed_by = $8::bigint,
             claimed_instance = $9
         FROM chosen WHERE m.ctid = chosen.ctid`;
    const rows = await this.query<{ connection_id: string; id: string; received_at: Date; payload: string; seq: string }>(
      query.deleteMessages ? 'take-delete' : 'take',
      `WITH candidates AS (
         SELECT ctid, seq, payload_bytes, octet_length(id) AS id_bytes FROM queued_message
         WHERE connection_id = $1 AND state = ${STATE_PENDING}
           AND ($2::text IS NULL OR $2::text = ANY(recipient_dids))
         ORDER BY seq
         LIMIT $3
         FOR UPDATE SKIP LOCKED
       ), sized AS (
         SELECT ctid,
                row_number() OVER w AS n,
                sum(payload_bytes) OVER w AS running_bytes,
                sum(payload_bytes + $6::int + 6 * id_bytes) OVER w AS running_frame
         FROM candidates
         WINDOW w AS (ORDER BY seq ROWS UNBOUNDED PRECEDING)
       ), chosen AS (
         SELECT ctid FROM sized
         WHERE n = 1 OR (running_bytes <= $4::bigint AND running_frame <= $5::bigint)
       )
       ${action}
       RETURNING m.connection_id, m.id, m.received_at, m.payload, m.seq`,
      [
        query.connectionId,
        query.recipientDid ?? null,
        query.limit,
        query.limitBytes,
        query.frameBudgetBytes,
        query.frameOverheadBytes,
        ...(query.deleteMessages ? [] : [query.sendingTimeoutMs, query.claimedBy ?? null, this.instanceId]),
      ],
    );
    // RETURNING does not keep the CTE's order.
    rows.sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : 1));
    return rows.map((row) => ({ connectionId: row.connection_id, id: row.id, receivedAt: row.received_at, payload: row.payload }));
  }

  async countPending(connectionId: string, recipientDid?: string): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'count-pending',
      `SELECT count(*)::int AS n FROM queued_message
       WHERE connection_id = $1 AND state = ${STATE_PENDING} AND ($2::text IS NULL OR $2::text = ANY(recipient_dids))`,
      [connectionId, recipientDid ?? null],
    );
    return rows[0].n;
  }

  /** Deletes the listed ids of this connection only; returns how many existed. */
  async remove(connectionId: string, ids: string[]): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'remove',
      `WITH d AS (DELETE FROM queued_message WHERE connection_id = $1 AND id = ANY($2::text[]) RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [connectionId, ids],
    );
    return rows[0].n;
  }

  async removeAll(connectionId: string, recipientDid?: string): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'remove-all',
      `WITH d AS (DELETE FROM queued_message
                  WHERE connection_id = $1 AND ($2::text IS NULL OR $2::text = ANY(recipient_dids)) RETURNING 1)
       SELECT count(*)::int AS n FROM d`,
      [connectionId, recipientDid ?? null],
    );
    return rows[0].n;
  }

  /**
   * Marks the given messages sending, each for its session token, if (and only if) they are still pending, for
   * live delivery; one statement for many connections. Returns the ones this call moved: a concurrent take or
   * another claim cannot also get them.
   */
  async claim(requests: ClaimRequest[], sendingTimeoutMs: number): Promise<StoredMessage[]> {
    const rows = await this.query<{ connection_id: string; id: string; received_at: Date; payload: string | null }>(
      'claim',
      `UPDATE queued_message m
       SET state = ${STATE_SENDING}, sending_until = now() + $5 * interval '1 millisecond', claimed_by = t.token, claimed_instance = $6
       FROM unnest($1::text[], $2::text[], $3::bool[], $4::bigint[]) AS t(c, i, want_payload, token)
       WHERE m.connection_id = t.c AND m.id = t.i AND m.state = ${STATE_PENDING}
       RETURNING m.connection_id, m.id, m.received_at, CASE WHEN t.want_payload THEN m.payload END AS payload`,
      [
        requests.map((r) => r.connectionId),
        requests.map((r) => r.id),
        requests.map((r) => r.wantPayload),
        requests.map((r) => r.token),
        sendingTimeoutMs,
        this.instanceId,
      ],
    );
    return rows.map((row) => ({ connectionId: row.connection_id, id: row.id, receivedAt: row.received_at, payload: row.payload }));
  }

  /** Gives claimed messages back (they could not be sent); only rows still sending are touched. */
  async release(connectionId: string, ids: string[]): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'release',
      `WITH u AS (UPDATE queued_message SET state = ${STATE_PENDING}, sending_until = NULL, claimed_by = NULL, claimed_instance = NULL
                  WHERE connection_id = $1 AND id = ANY($2::text[]) AND state = ${STATE_SENDING} RETURNING 1)
       SELECT count(*)::int AS n FROM u`,
      [connectionId, ids],
    );
    return rows[0].n;
  }

  /**
   * A new live session (token `token`) now holds the connection: what was in flight to older sessions, or was
   * taken, is pending again. Claims of this session or of an even newer one are kept.
   */
  async releaseForNewSession(connectionId: string, token: number): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'release-for-new-session',
      `WITH u AS (UPDATE queued_message SET state = ${STATE_PENDING}, sending_until = NULL, claimed_by = NULL, claimed_instance = NULL
                  WHERE connection_id = $1 AND state = ${STATE_SENDING} AND (claimed_by IS NULL OR claimed_by < $2)
                  RETURNING 1)
       SELECT count(*)::int AS n FROM u`,
      [connectionId, token],
    );
    return rows[0].n;
  }

  /**
   * These sessions ended: their claims, and what was taken while no session was held, are pending again. A
   * successor's claims are left alone, however late this runs. One statement for many sessions, so a socket
   * that held thousands of them does not take the pool away from everyone else when it closes.
   */
  async releaseForEndedSessions(sessions: { connectionId: string; token: number }[]): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'release-for-ended-sessions',
      `WITH ended AS (SELECT * FROM unnest($1::text[], $2::bigint[]) AS t(connection_id, token)),
       u AS (UPDATE queued_message m SET state = ${STATE_PENDING}, sending_until = NULL, claimed_by = NULL, claimed_instance = NULL
             FROM ended
             WHERE m.connection_id = ended.connection_id AND m.state = ${STATE_SENDING}
               AND (m.claimed_by IS NULL OR m.claimed_by = ended.token)
             RETURNING 1)
       SELECT count(*)::int AS n FROM u`,
      [sessions.map((s) => s.connectionId), sessions.map((s) => s.token)],
    );
    return rows[0].n;
  }

  /** An instance died (its lease expired): everything claimed through it is pending again. */
  async releaseForDeadInstance(instanceId: string): Promise<number> {
    const rows = await this.query<{ n: number }>(
      'release-for-dead-instance',
      `WITH u AS (UPDATE queued_message SET state = ${STATE_PENDING}, sending_until = NULL, claimed_by = NULL, claimed_instance = NULL
                  WHERE state = ${STATE_SENDING} AND claimed_instance = $1 RETURNING 1)
       SELECT count(*)::int AS n FROM u`,
      [instanceId],
    );
    return rows[0].n;
  }

  /** Returns at most `limit` messages whose acknowledgement deadline passed to pending. */
  async releaseExpired(limit: number): Promise<StoredMessage[]> {
    const rows = await this.query<{ connection_id: string; id: string; received_at: Date }>(
      'release-expired',
      `WITH expired AS (
         SELECT connection_id, id FROM queued_message
         WHERE state = ${STATE_SENDING} AND sending_until < now()
         ORDER BY sending_until
         LIMIT $1
         FOR UPDATE SKIP LOCKED
       )
       UPDATE queued_message m SET state = ${STATE_PENDING}, sending_until = NULL, claimed_by = NULL, claimed_instance = NULL
       FROM expired WHERE m.connection_id = expired.connection_id AND m.id = expired.id
       RETURNING m.connection_id, m.id, m.received_at`,
      [limit],
    );
    return rows.map((row) => ({ connectionId: row.connection_id, id: row.id, receivedAt: row.received_at, payload: null }));
  }

  async totals(): Promise<QueueTotals> {
    const rows = await this.query<{ pending: number; oldest: Date | null }>(
      'totals',
      `SELECT count(*)::int AS pending, min(received_at) AS oldest FROM queued_message WHERE state = ${STATE_PENDING}`,
      [],
    );
    return { pending: rows[0].pending, oldestPendingReceivedAt: rows[0].oldest };
  }

  async ping(): Promise<void> {
    await this.query('ping', 'SELECT 1', []);
  }
}
