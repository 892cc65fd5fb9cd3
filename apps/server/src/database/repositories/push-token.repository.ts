import { Injectable } from '@nestjs/common';
import { ConnectionRef } from '../../config';
import { DatabaseExecutor, Row, StatementRunner } from '../database.executor';

/** A device token as the push module uses it: the `pushNotificationToken` of an add, with a token present. */
export interface PushTokenRecord {
  /** Lower-cased: `fcm`, `apns`, or a type only a webhook understands. */
  type: string;
  token: string;
  appId?: string;
}

/**
 * Push statements in flight at once. Push work shares the server's small pool with addMessage and takeFromQueue;
 * a storm of push decisions (each a statement or two) must leave most connections to the queue itself.
 */
const MAX_CONCURRENT_STATEMENTS = 2;
/** A dead mark lapses after this: a reinstalled app can get the same token back, and the table stays bounded. */
const DEAD_FOR = `interval '30 days'`;

/**
 * Token memory, shared by the fleet through PostgreSQL: the latest token of each connection (`push_token`), and
 * the sha256 of tokens a provider declared dead (`dead_push_token`), so that a client re-sending one cannot revive
 * it. Statements go through the `DatabaseExecutor` (deadline, outage fast-fail, `StorageException`), at most
 * MAX_CONCURRENT_STATEMENTS at a time.
 */
@Injectable()
export class PushTokenRepository {
  private readonly db: StatementRunner;

  constructor(executor: DatabaseExecutor) {
    this.db = executor.limited(MAX_CONCURRENT_STATEMENTS);
  }

  private query<T extends Row>(name: string, text: string, values: unknown[]): Promise<T[]> {
    return this.db.query<T>(name, text, values);
  }

  /**
   * Records `token` as the connection's latest, unless it is dead; one statement either way. Returns whether it
   * is dead (then the connection's remembered token, if any, is left as it is).
   */
  async remember(ref: ConnectionRef, token: PushTokenRecord, hash: string): Promise<{ dead: boolean }> {
    const rows = await this.query<{ dead: boolean }>(
      'push-token-remember',
      `WITH d AS (SELECT EXISTS (SELECT 1 FROM dead_push_token WHERE token_hash = $5 AND declared_at > now() - ${DEAD_FOR}) AS dead),
       up AS (INSERT INTO push_token (tenant, connection_id, type, token, app_id, token_hash, updated_at)
              SELECT $6, $1, $2, $3, $4, $5, now() FROM d WHERE NOT d.dead
              ON CONFLICT (tenant, connection_id) DO UPDATE
                SET type = excluded.type, token = excluded.token, app_id = excluded.app_id,
                    token_hash = excluded.token_hash, updated_at = now()
                WHERE (push_token.type, push_token.token_hash, push_token.app_id)
                      IS DISTINCT FROM (excluded.type, excluded.token_hash, excluded.app_id)
              RETURNING 1)
       SELECT dead FROM d`,
      [ref.connectionId, token.type, token.token, token.appId ?? null, hash, ref.tenant],
    );
    return { dead: rows[0].dead };
  }

  /**
   * The connection's latest live token, if one is known. Dead ones are filtered here too: a `remember` racing a
   * `markDead` of the same token can store it after the mark deleted it.
   */
  async latest(ref: ConnectionRef): Promise<PushTokenRecord | undefined> {
    const rows = await this.query<{ type: string; token: string; app_id: string | null }>(
      'push-token-latest',
      `SELECT t.type, t.token, t.app_id FROM push_token t
        WHERE t.tenant = $2 AND t.connection_id = $1
          AND NOT EXISTS (SELECT 1 FROM dead_push_token d WHERE d.token_hash = t.token_hash AND d.declared_at > now() - ${DEAD_FOR})`,
      [ref.connectionId, ref.tenant],
    );
    const row = rows[0];
    return row && { type: row.type, token: row.token, ...(row.app_id !== null ? { appId: row.app_id } : {}) };
  }

  /**
   * A provider declared the token dead: remembered as such (for 30 days from the latest declaration), and forgotten
   * by every connection that had it, in every tenant: a dead device token is the provider's fact about the device,
   * whichever mediator sent it. Lapsed marks are pruned on the way (a handful at a time, by the declared_at index).
   */
  async markDead(hash: string): Promise<void> {
    await this.query(
      'push-token-mark-dead',
      `WITH dead AS (INSERT INTO dead_push_token (token_hash) VALUES ($1)
                     ON CONFLICT (token_hash) DO UPDATE SET declared_at = now()),
            lapsed AS (DELETE FROM dead_push_token WHERE token_hash IN (
                         SELECT token_hash FROM dead_push_token WHERE declared_at <= now() - ${DEAD_FOR} AND token_hash <> $1
                          ORDER BY declared_at LIMIT 100))
       DELETE FROM push_token WHERE token_hash = $1`,
      [hash],
    );
  }
}
