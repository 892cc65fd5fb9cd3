import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Push token memory. push_token: the latest device token per connection, so later messages without a token still
 * wake the device, on whichever instance they arrive. dead_push_token: sha256 (hex) of tokens FCM or APNs declared
 * dead; the token itself is not kept, only enough to refuse it when a client sends it again (for 30 days after the
 * latest declaration).
 */
export class CreatePushToken1764100000000 implements MigrationInterface {
  name = 'CreatePushToken1764100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE push_token (
         connection_id text PRIMARY KEY,
         type text NOT NULL,
         token text NOT NULL,
         app_id text,
         token_hash text NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    await queryRunner.query(`CREATE INDEX push_token_token_hash_idx ON push_token (token_hash)`);
    await queryRunner.query(
      `CREATE TABLE dead_push_token (
         token_hash text PRIMARY KEY,
         declared_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    // Dead marks lapse after 30 days: lookups filter on declared_at, and lapsed rows are pruned oldest first.
    await queryRunner.query(`CREATE INDEX dead_push_token_declared_at_idx ON dead_push_token (declared_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE dead_push_token`);
    await queryRunner.query(`DROP TABLE push_token`);
  }
}
