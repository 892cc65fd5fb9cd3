import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The queue table. Design notes (measured, see README "Benchmarks"):
 * - The key is (connection_id, id) because a client-chosen messageId is unique per connection only.
 * - `seq` orders the queue; the partial index on (connection_id, seq) WHERE state = 0 lets a take walk one
 *   connection's pending messages in order without touching delivered or in-flight rows.
 * - The payload is stored as text with its byte size beside it: cheaper than jsonb to write and read back
 *   verbatim, and `limitBytes` is served from the size column without reading payloads.
 * - state: 0 = pending, 1 = sending (taken or notified, waiting for removeMessages until sending_until).
 * - claimed_by: the live session (its ever-increasing token) a sending message was claimed for, or null. A
 *   session change releases only the claims of older sessions, so a late release of an ended session cannot
 *   take back what was already pushed to its successor.
 */
export class CreateQueuedMessage1763800000000 implements MigrationInterface {
  name = 'CreateQueuedMessage1763800000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE queued_message (
        connection_id text NOT NULL,
        id text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        state smallint NOT NULL DEFAULT 0,
        recipient_dids text[] NOT NULL,
        payload text NOT NULL,
        payload_bytes integer NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        sending_until timestamptz,
        claimed_by bigint,
        CONSTRAINT queued_message_pkey PRIMARY KEY (connection_id, id)
      )`);
    await queryRunner.query(`CREATE INDEX queued_message_pending_idx ON queued_message (connection_id, seq) WHERE state = 0`);
    await queryRunner.query(`CREATE INDEX queued_message_sending_idx ON queued_message (sending_until) WHERE state = 1`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE queued_message`);
  }
}
