import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import {
  AddMessageParams,
  GetAvailableMessageCountParams,
  GetQueueStatsParams,
  QueuedMessage,
  QueueStats,
  RemoveAllMessagesParams,
  RemoveMessagesParams,
  TakeFromQueueParams,
} from '@didcomm-mpr/protocol';
import { APP_CONFIG, AppConfig, ConnectionRef, refKey } from '../config';
import {
  ExpiredCount,
  GroupCommitter,
  InsertedMessage,
  ItemFailure,
  MessageRepository,
  NewMessage,
  StorageException,
  StorageExceptionCode,
} from '../database';
import { CommittedMessage, DeliveryService } from '../delivery';
import { MetricsService } from '../metrics';
import { QueueException, QueueExceptionCode } from './queue.exception';
import { RawJson } from './raw-json';

/** JSON text around one message in a take result besides its id: receivedAt, keys, separators. */
const MESSAGE_ENVELOPE_BYTES = 256;
/** Room left in a result frame for the JSON-RPC envelope (request ids are at most 1,024 characters). */
const RESPONSE_ENVELOPE_BYTES = 8 * 1024;

/** A `QueuedMessage` whose payload is still JSON text. */
export interface TakenMessage extends Omit<QueuedMessage, 'encryptedMessage'> {
  encryptedMessage: RawJson;
}

interface AddItem {
  message: NewMessage;
  params: QueueParams<AddMessageParams>;
}

/** A method's params without the connectionId: the caller passes the connection as a `ConnectionRef`. */
export type QueueParams<T extends { connectionId: string }> = Omit<T, 'connectionId'>;

/** Counts per tenant (metrics are labelled by tenant); a batch usually holds one or a few. */
function countPerTenant<T>(items: T[], tenantOf: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(tenantOf(item), (counts.get(tenantOf(item)) ?? 0) + 1);
  return counts;
}

/**
 * The queue's methods: durable adds (validated, sized, group-committed, within the connection's quota), takes,
 * counts, stats and removals, each on one connection of one tenant (a `ConnectionRef`). What happens once an add is
 * committed (a live holder, a publish, a push) is the delivery module's decision.
 */
@Injectable()
export class QueueService {
  private readonly logger = new Logger(QueueService.name);
  private readonly adds: GroupCommitter<AddItem, InsertedMessage | undefined>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly messages: MessageRepository,
    private readonly delivery: DeliveryService,
    private readonly metrics: MetricsService,
  ) {
    this.adds = new GroupCommitter({
      flush: (items) => this.flushAdds(items),
      // One INSERT in flight: adds arriving meanwhile share the next statement and commit. More flushes in
      // parallel only make each batch smaller (more statements, commits and CPU per message) and let two
      // batches of one instance deadlock on the same keys.
      maxConcurrentFlushes: 1,
      maxBatchItems: 500,
      maxBatchWeight: 8 * 1024 * 1024,
      weigh: (item) => item.message.payloadBytes,
    });
  }

  /** Resolves with the message id once the message is committed (or was already queued under that id). */
  async addMessage(ref: ConnectionRef, params: QueueParams<AddMessageParams>): Promise<string> {
    const payload = JSON.stringify(params.payload);
    const payloadBytes = Buffer.byteLength(payload);
    if (payloadBytes > this.config.maxPayloadBytes) {
      throw new QueueException(
        QueueExceptionCode.PayloadTooLarge,
        `payload is ${payloadBytes} bytes, more than MAX_PAYLOAD_BYTES (${this.config.maxPayloadBytes})`,
      );
    }
    const id = params.messageId ?? randomUUID();
    const ttlMs = Math.min(params.ttlMs ?? this.config.retention.messageTtlMs, this.config.retention.messageTtlMs);
    await this.adds.submit({
      message: { ref, id, recipientDids: params.recipientDids, payload, payloadBytes, ttlMs },
      params,
    });
    return id;
  }

  private async flushAdds(items: AddItem[]): Promise<(InsertedMessage | undefined | ItemFailure)[]> {
    // A message for a session held here goes in already claimed for it: live delivery then needs no second statement.
    for (const item of items) item.message.claimedBy = this.delivery.preclaimToken(item.message.ref, item.message.payloadBytes);
    let inserted: InsertedMessage[];
    const refused = new Map<string, ItemFailure>();
    try {
      const outcome = await this.messages.insertMany(
        items.map((item) => item.message),
        this.config.redeliveryTimeoutMs,
        { maxMessages: this.config.retention.maxQueueMessages, maxBytes: this.config.retention.maxQueueBytes },
      );
      inserted = outcome.inserted;
      for (const row of outcome.refused) {
        refused.set(`${refKey(row.ref)}\u0000${row.id}`, new ItemFailure(this.queueFull(row.ref, row.messagesAfter, row.bytesAfter)));
      }
    } catch (error) {
      // A statement error (not an outage) is one item's fault: find it, so the others' adds still succeed.
      if (items.length === 1 || !(error instanceof StorageException) || error.code !== StorageExceptionCode.QueryFailed) throw error;
      this.logger.warn(`An addMessage batch of ${items.length} failed (${error.message}); retrying its items one by one`);
      const results: (InsertedMessage | undefined | ItemFailure)[] = [];
      for (const item of items) {
        results.push(
          await this.flushAdds([item]).then(
            ([result]) => result,
            (itemError: unknown) => new ItemFailure(itemError),
          ),
        );
      }
      return results;
    }
    for (const [tenant, count] of countPerTenant(inserted, (row) => row.ref.tenant)) this.metrics.messagesAdded.inc({ tenant }, count);
    const byKey = new Map(inserted.map((row) => [`${refKey(row.ref)}\u0000${row.id}`, row]));
    // A duplicate (connection, id) inside one batch is inserted once: only its first item announces it, and the
    // others succeed as already queued even if the quota refused their copy.
    const accepted = new Set<string>();
    const committed: CommittedMessage[] = [];
    const results = items.map((item): InsertedMessage | undefined | ItemFailure => {
      const key = `${refKey(item.message.ref)}\u0000${item.message.id}`;
      const row = byKey.get(key);
      if (row) {
        byKey.delete(key);
        accepted.add(key);
        committed.push({
          ref: row.ref,
          id: row.id,
          receivedAt: row.receivedAt,
          payload: item.message.payload,
          payloadBytes: item.message.payloadBytes,
          claimedFor: row.claimed ? item.message.claimedBy : undefined,
          pushToken: item.params.pushNotificationToken,
        });
        return row;
      }
      if (accepted.has(key)) return undefined;
      return refused.get(key);
    });
    if (refused.size > 0) {
      const rejected = items.filter((_item, index) => results[index] instanceof ItemFailure);
      for (const [tenant, count] of countPerTenant(rejected, (item) => item.message.ref.tenant))
        this.metrics.quotaRejections.inc({ tenant }, count);
    }
    this.delivery.committed(committed);
    return results;
  }

  private queueFull(ref: ConnectionRef, messagesAfter: number, bytesAfter: number): QueueException {
    const { maxQueueMessages, maxQueueBytes } = this.config.retention;
    const which =
      messagesAfter > maxQueueMessages
        ? `it holds ${messagesAfter - 1} messages (MAX_QUEUE_MESSAGES is ${maxQueueMessages})`
        : `this message would bring it to ${bytesAfter} bytes (MAX_QUEUE_BYTES is ${maxQueueBytes})`;
    return new QueueException(QueueExceptionCode.QueueFull, `the queue of connection ${ref.connectionId} is full: ${which}`);
  }

  /** `encryptedMessage` is the stored JSON text, spliced into the response as it is (see RawJson). */
  async takeFromQueue(ref: ConnectionRef, params: QueueParams<TakeFromQueueParams>): Promise<TakenMessage[]> {
    const limit = Math.min(params.limit ?? this.config.maxTakeMessages, this.config.maxTakeMessages);
    const rows = await this.messages.take({
      ref,
      recipientDid: params.recipientDid,
      limit,
      limitBytes: params.limitBytes ?? Number.MAX_SAFE_INTEGER,
      frameBudgetBytes: this.config.maxFrameBytes - RESPONSE_ENVELOPE_BYTES,
      frameOverheadBytes: MESSAGE_ENVELOPE_BYTES,
      deleteMessages: params.deleteMessages ?? false,
      sendingTimeoutMs: this.config.redeliveryTimeoutMs,
      // Taken while a session is held here: claimed for it, so that its end puts them back to pending.
      claimedBy: this.delivery.localSession(ref)?.token,
    });
    this.metrics.messagesTaken.inc({ tenant: ref.tenant }, rows.length);
    if (params.deleteMessages) this.metrics.messagesRemoved.inc({ tenant: ref.tenant }, rows.length);
    return rows.map((row) => ({
      id: row.id,
      receivedAt: row.receivedAt.toISOString(),
      encryptedMessage: new RawJson(row.payload as string),
    }));
  }

  getAvailableMessageCount(ref: ConnectionRef, params: QueueParams<GetAvailableMessageCountParams>): Promise<number> {
    return this.messages.countPending(ref, params.recipientDid);
  }

  async getQueueStats(ref: ConnectionRef, _params: QueueParams<GetQueueStatsParams>): Promise<QueueStats> {
    const stats = await this.messages.stats(ref);
    return { ...stats, oldestReceivedAt: stats.oldestReceivedAt?.toISOString() ?? null };
  }

  async removeMessages(ref: ConnectionRef, params: QueueParams<RemoveMessagesParams>): Promise<void> {
    if (params.messageIds.length === 0) return;
    this.metrics.messagesRemoved.inc({ tenant: ref.tenant }, await this.messages.remove(ref, params.messageIds));
  }

  async removeAllMessages(ref: ConnectionRef, params: QueueParams<RemoveAllMessagesParams>): Promise<void> {
    this.metrics.messagesRemoved.inc({ tenant: ref.tenant }, await this.messages.removeAll(ref, params.recipientDid));
  }

  /**
   * Deletes expired messages if this instance wins the fleet's sweep lock; undefined when another instance is
   * sweeping. Counted per connection, so the caller can log aggregates, never a line per message.
   */
  async deleteExpired(batchSize: number, maxBatches: number, pauseMs: number): Promise<ExpiredCount[] | undefined> {
    const expired = await this.messages.deleteExpired(batchSize, maxBatches, pauseMs);
    const perTenant = new Map<string, number>();
    for (const { ref, messages } of expired ?? []) perTenant.set(ref.tenant, (perTenant.get(ref.tenant) ?? 0) + messages);
    for (const [tenant, count] of perTenant) this.metrics.messagesExpired.inc({ tenant }, count);
    return expired;
  }

  /** True when no add is waiting for or inside a commit (used by graceful shutdown). */
  get idle(): boolean {
    return this.adds.idle;
  }
}
