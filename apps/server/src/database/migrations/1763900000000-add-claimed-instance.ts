import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * claimed_instance: the server instance whose socket a sending message was claimed for (taken through it, or
 * pushed to a live session it held). When an instance dies, a survivor returns exactly its claims to pending.
 */
export class AddClaimedInstance1763900000000 implements MigrationInterface {
  name = 'AddClaimedInstance1763900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE queued_message ADD COLUMN claimed_instance text`);
    await queryRunner.query(`CREATE INDEX queued_message_claimed_instance_idx ON queued_message (claimed_instance) WHERE state = 1`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX queued_message_claimed_instance_idx`);
    await queryRunner.query(`ALTER TABLE queued_message DROP COLUMN claimed_instance`);
  }
}
