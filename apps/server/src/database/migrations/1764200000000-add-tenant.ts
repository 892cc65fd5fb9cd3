import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tenants. Every connection now lives in the tenant of the token that names it (AUTH_TOKENS_FILE), so the tenant
 * leads every key that a connection id led: the queue (queued_message), its quota bound (queue_usage) and its
 * remembered push token (push_token). Rows stored before are the default tenant's, which is the tenant of tokens from
 * AUTH_TOKENS and of a server without authentication, so an upgrade changes nothing for them.
 *
 * The column gets its value from a DEFAULT only while it is added (a constant default: no table rewrite); the default
 * is then dropped, so a statement that forgot the tenant fails instead of writing into the default tenant. The
 * primary key and the pending index are rebuilt with the tenant first: on a large queue this takes a while under the
 * migration lock, at the first start of the new version (see README "Deploy").
 */
export class AddTenant1764200000000 implements MigrationInterface {
  name = 'AddTenant1764200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['queued_message', 'queue_usage', 'push_token']) {
      await queryRunner.query(`ALTER TABLE ${table} ADD COLUMN tenant text NOT NULL DEFAULT 'default'`);
      await queryRunner.query(`ALTER TABLE ${table} ALTER COLUMN tenant DROP DEFAULT`);
    }
    await queryRunner.query(
      `ALTER TABLE queued_message DROP CONSTRAINT queued_message_pkey, ADD CONSTRAINT queued_message_pkey PRIMARY KEY (tenant, connection_id, id)`,
    );
    await queryRunner.query(`DROP INDEX queued_message_pending_idx`);
    await queryRunner.query(`CREATE INDEX queued_message_pending_idx ON queued_message (tenant, connection_id, seq) WHERE state = 0`);
    await queryRunner.query(
      `ALTER TABLE queue_usage DROP CONSTRAINT queue_usage_pkey, ADD CONSTRAINT queue_usage_pkey PRIMARY KEY (tenant, connection_id)`,
    );
    await queryRunner.query(
      `ALTER TABLE push_token DROP CONSTRAINT push_token_pkey, ADD CONSTRAINT push_token_pkey PRIMARY KEY (tenant, connection_id)`,
    );
  }

  /** Fails (a duplicate key) if two tenants hold the same connection id: their rows cannot share the old keys. */
  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE push_token DROP CONSTRAINT push_token_pkey, ADD CONSTRAINT push_token_pkey PRIMARY KEY (connection_id)`,
    );
    await queryRunner.query(
      `ALTER TABLE queue_usage DROP CONSTRAINT queue_usage_pkey, ADD CONSTRAINT queue_usage_pkey PRIMARY KEY (connection_id)`,
    );
    await queryRunner.query(`DROP INDEX queued_message_pending_idx`);
    await queryRunner.query(`CREATE INDEX queued_message_pending_idx ON queued_message (connection_id, seq) WHERE state = 0`);
    await queryRunner.query(
      `ALTER TABLE queued_message DROP CONSTRAINT queued_message_pkey, ADD CONSTRAINT queued_message_pkey PRIMARY KEY (connection_id, id)`,
    );
    for (const table of ['queued_message', 'queue_usage', 'push_token']) await queryRunner.query(`ALTER TABLE ${table} DROP COLUMN tenant`);
  }
}
