import { ConnectionRef, refKey } from '../../../apps/server/src/config';
import type {
  ConnectionQueueStats,
  InsertOutcome,
  NewMessage,
  QueueQuota,
  StoredMessage,
  TakeQuery,
} from '../../../apps/server/src/database';

interface Row {
  ref: ConnectionRef;
  id: string;
  recipientDids: string[];
  payload: string;
  payloadBytes: number;
  receivedAt: Date;
  sending: boolean;
}

/** At most this many messages in all: a long fuzz run adds without end. */
const CAPACITY = 2_000;

/**
 * A thin in-memory stand-in for the queue's repository, for fuzzing the RPC layer without PostgreSQL: the methods the
 * queue service calls, with their contract (idempotent adds by id, the quota, takes that honour limit, limitBytes and
 * deleteMessages, pending and sending), none of the SQL. The real repository is tested against PostgreSQL elsewhere.
 */
export class InMemoryMessageRepository {
  private readonly rows = new Map<string, Row>();

  async insertMany(messages: NewMessage[], _sendingTimeoutMs: number, quota: QueueQuota): Promise<InsertOutcome> {
    const outcome: InsertOutcome = { inserted: [], refused: [] };
    for (const message of messages) {
      const key = `${refKey(message.ref)}\u0000${message.id}`;
      if (this.rows.has(key)) continue;
      const queued = this.of(message.ref);
      const messagesAfter = queued.length + 1;
      const bytesAfter = queued.reduce((sum, row) => sum + row.payloadBytes, 0) + message.payloadBytes;
      if (messagesAfter > quota.maxMessages || bytesAfter > quota.maxBytes) {
        outcome.refused.push({ ref: message.ref, id: message.id, messagesAfter, bytesAfter });
        continue;
      }
      if (this.rows.size >= CAPACITY) this.rows.delete(this.rows.keys().next().value as string);
      const row: Row = { ...message, receivedAt: new Date(), sending: message.claimedBy !== undefined };
      this.rows.set(key, row);
      outcome.inserted.push({ ref: row.ref, id: row.id, receivedAt: row.receivedAt, claimed: row.sending });
    }
    return outcome;
  }

  async take(query: TakeQuery): Promise<StoredMessage[]> {
    const taken: StoredMessage[] = [];
    let bytes = 0;
    for (const [key, row] of this.rows) {
      if (taken.length >= query.limit) break;
      if (refKey(row.ref) !== refKey(query.ref) || row.sending) continue;
      if (query.recipientDid !== undefined && !row.recipientDids.includes(query.recipientDid)) continue;
      // The oldest message always goes, so a queue never stalls on one larger than the limit.
      if (taken.length > 0 && (bytes + row.payloadBytes > query.limitBytes || bytes + row.payloadBytes > query.frameBudgetBytes)) break;
      bytes += row.payloadBytes;
      taken.push({ ref: row.ref, id: row.id, receivedAt: row.receivedAt, payload: row.payload });
      if (query.deleteMessages) this.rows.delete(key);
      else row.sending = true;
    }
    return taken;
  }

  async countPending(ref: ConnectionRef, recipientDid?: string): Promise<number> {
    return this.of(ref).filter((row) => !row.sending && (recipientDid === undefined || row.recipientDids.includes(recipientDid))).length;
  }

  async remove(ref: ConnectionRef, ids: string[]): Promise<number> {
    let removed = 0;
    for (const id of ids) if (this.rows.delete(`${refKey(ref)}\u0000${id}`)) removed++;
    return removed;
  }

  async removeAll(ref: ConnectionRef, recipientDid?: string): Promise<number> {
    let removed = 0;
    for (const [key, row] of this.rows) {
      if (refKey(row.ref) !== refKey(ref) || (recipientDid !== undefined && !row.recipientDids.includes(recipientDid))) continue;
      this.rows.delete(key);
      removed++;
    }
    return removed;
  }

  async stats(ref: ConnectionRef): Promise<ConnectionQueueStats> {
    const rows = this.of(ref);
    return {
      pending: rows.filter((row) => !row.sending).length,
      sending: rows.filter((row) => row.sending).length,
      bytes: rows.reduce((sum, row) => sum + row.payloadBytes, 0),
      oldestReceivedAt: rows[0]?.receivedAt ?? null,
    };
  }

  private of(ref: ConnectionRef): Row[] {
    const key = refKey(ref);
    return [...this.rows.values()].filter((row) => refKey(row.ref) === key);
  }
}
