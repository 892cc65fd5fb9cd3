import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Retention and quotas.
 * - queued_message.expires_at: when a message stops being returned or counted (received_at + MESSAGE_TTL_MS,
 *   or less when the add asked for a shorter ttlMs). Messages already queued get the default life of 7 days.
 *   The index serves the expiry sweeper, which deletes the oldest-expiring rows first in bounded batches;
 *   expiry follows insert order closely, so the index grows at its right edge and costs the insert path little.
 * - queue_usage: per connection, an upper bound of its messages and payload bytes, raised by the statement that
 *   inserts messages and reset to a real count when it nears a limit (see MessageRepository.insertOnce). The
 *   quota check thus reads one row per connection instead of counting the queue at every add (measured: counting
 *   made a batch's insert cost grow with the size of every queue it touched), and removals never touch it (an add
 *   and the removal of the previous message would otherwise queue up on the same row). Its rows are updated by
 *   every add: half-empty pages keep those updates HOT (no index change), and autovacuum runs after a fixed number
 *   of dead rows rather than a fraction of a table that stays small.
 */
export class RetentionAndQuotas1764000000000 implements MigrationInterface {
  name = 'RetentionAndQuotas1764000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE queued_message ADD COLUMN expires_at timestamptz`);
    await queryRunner.query(`UPDATE queued_message SET expires_at = received_at + interval '7 days'`);
    await queryRunner.query(`ALTER TABLE queued_message ALTER COLUMN expires_at SET NOT NULL`);
    await queryRunner.query(`CREATE INDEX queued_message_expires_idx ON queued_message (expires_at)`);
    await queryRunner.query(`
      CREATE TABLE queue_usage (
        connection_id text PRIMARY KEY,
        messages integer NOT NULL,
        bytes bigint NOT NULL
      ) WITH (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)`);
    await queryRunner.query(`
      INSERT INTO queue_usage (connection_id, messages, bytes)
      SELECT connection_id, count(*), sum(payload_bytes) FROM queued_message GROUP BY connection_id`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE queue_usage`);
    await queryRunner.query(`DROP INDEX queued_message_expires_idx`);
    await queryRunner.query(`ALTER TABLE queued_message DROP COLUMN expires_at`);
  }
}
