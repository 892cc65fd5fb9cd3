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
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { MetricsService } from '../health/metrics.service';
import { AvailableMessage, PubSubPort } from '../pubsub/pubsub.port';
import { PushPort } from '../push/push.port';
import { StorageException, StorageExceptionCode } from '../database/storage.exception';
import { GroupCommitter, ItemFailure } from './group-committer';
import { ExpiredCount, InsertedMessage, MessageRepository, NewMessage, StoredMessage } from './message.repository';
import { QueueException, QueueExceptionCode } from './queue.exception';
import { RawJson } from './raw-json';

/** JSON text around one message in a take result besides its id: receivedAt, keys, separators. */
const MESSAGE_ENVELOPE_BYTES = 256;
/** Room left in a result frame for the JSON-RPC envelope (request ids are at most 1,024 characters). */
const RESPONSE_ENVELOPE_BYTES = 8 * 1024;
/** Payloads up to this size travel with the "messages available" event; larger ones are read by the holder. */
const INLINE_PAYLOAD_BYTES = 64 * 1024;

/** A `QueuedMessage` whose payload is still JSON text. */
export interface TakenMessage extends Omit<QueuedMessage, 'encryptedMessage'> {
  encryptedMessage: RawJson;
}

/** What the queue needs to know of a connection's live session on this instance. */
export interface LocalSessionView {
  /** Ever-increasing per session: claims carry it, so releases can tell successors' claims apart. */
  token: number;
  /** Open and not over its send-buffer bound. */
  writable: boolean;
}

/** Sessions released per statement when many end at once (a socket holding thousands closes). */
const RELEASE_CHUNK = 1000;

interface ClaimItem {
  connectionId: string;
  messages: AvailableMessage[];
  token: number;
}

interface AddItem {
  message: NewMessage;
  params: AddMessageParams;
  /** Token of the local live session the message is inserted sending for, if any. */
  claimedFor?: number;
}

/**
 * The queue facade: durable adds (group-committed), takes, counts and removals, plus what live delivery
 * needs (claim and release). After a commit it announces new messages on the connection's channel; when
 * nobody holds a live session it asks the push port to wake the device.
 */
@Injectable()
export class QueueService {
  private readonly logger = new Logger(QueueService.name);
  private readonly adds: GroupCommitter<AddItem, InsertedMessage | undefined>;
  private readonly claims: GroupCommitter<ClaimItem, StoredMessage[]>;
  private publishFailing = false;
  /** Set by the live-session module: the connection's live session on this instance, if any. */
  private localSession: (connectionId: string) => LocalSessionView | undefined = () => undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly messages: MessageRepository,
    private readonly pubsub: PubSubPort,
    private readonly push: PushPort,
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
    this.claims = new GroupCommitter({
      flush: (items) => this.flushClaims(items),
      // One claim statement in flight per instance: two could lock the same rows in opposite orders.
      maxConcurrentFlushes: 1,
      maxBatchItems: 500,
      maxBatchWeight: 5000,
      weigh: (item) => item.messages.length,
    });
    metrics.setQueueSource(() => this.messages.totals());
  }

  /**
   * Lets adds for a locally held, writable session be inserted already claimed for it (live delivery then
   * needs no second statement), and takes be claimed for the session that is current.
   */
  setLocalSessionLookup(lookup: (connectionId: string) => LocalSessionView | undefined): void {
    this.localSession = lookup;
  }

  /** Resolves with the message id once the message is committed (or was already queued under that id). */
  async addMessage(params: AddMessageParams): Promise<string> {
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
      message: { connectionId: params.connectionId, id, recipientDids: params.recipientDids, payload, payloadBytes, ttlMs },
      params,
    });
    return id;
  }

  private async flushAdds(items: AddItem[]): Promise<(InsertedMessage | undefined | ItemFailure)[]> {
    for (const item of items) {
      const session = item.message.payloadBytes <= INLINE_PAYLOAD_BYTES ? this.localSession(item.message.connectionId) : undefined;
      item.claimedFor = session?.writable ? session.token : undefined;
      item.message.claimedBy = item.claimedFor;
    }
    let inserted: InsertedMessage[];
    const refused = new Map<string, ItemFailure>();
    try {
      const outcome = await this.messages.insertMany(
        items.map((item) => item.message),
        this.config.redeliveryTimeoutMs,
        { maxMessages: this.config.retention.maxQueueMessages, maxBytes: this.config.retention.maxQueueBytes },
      );
      inserted = outcome.inserted;
      for (const row of outcome.refused) refused.set(`${row.connectionId}\u0000${row.id}`, new ItemFailure(this.queueFull(row.connectionId, row.messagesAfter, row.bytesAfter)));
    } catch (error) {
      // A statement error (not an outage) is one item's fault: find it, so the others' adds still succeed.
      if (items.length === 1 || !(error instanceof StorageException) || error.code !== StorageExceptionCode.QueryFailed) throw error;
      this.logger.warn(`An addMessage batch of ${items.length} failed (${error.message}); retrying its items one by one`);
      const results: (InsertedMessage | undefined | ItemFailure)[] = [];
      for (const item of items) {
        results.push(await this.flushAdds([item]).then(([result]) => result, (itemError: unknown) => new ItemFailure(itemError)));
      }
      return results;
    }
    this.metrics.messagesAdded.inc(inserted.length);
    const byKey = new Map(inserted.map((row) => [`${row.connectionId}\u0000${row.id}`, row]));
    // A duplicate (connection, id) inside one batch is inserted once: only its first item announces it, and the
    // others succeed as already queued even if the quota refused their copy.
    const accepted = new Set<string>();
    const results = items.map((item): InsertedMessage | undefined | ItemFailure => {
      const key = `${item.message.connectionId}\u0000${item.message.id}`;
      const row = byKey.get(key);
      if (row) {
        byKey.delete(key);
        accepted.add(key);
        return row;
      }
      if (accepted.has(key)) return undefined;
      return refused.get(key);
    });
    if (refused.size > 0) this.metrics.quotaRejections.inc(results.filter((result) => result instanceof ItemFailure).length);
    this.announceAdded(items, results.map((result) => (result instanceof ItemFailure ? undefined : result)));
    return results;
  }

  private queueFull(connectionId: string, messagesAfter: number, bytesAfter: number): QueueException {
    const { maxQueueMessages, maxQueueBytes } = this.config.retention;
    const which =
      messagesAfter > maxQueueMessages
        ? `it holds ${messagesAfter - 1} messages (MAX_QUEUE_MESSAGES is ${maxQueueMessages})`
        : `this message would bring it to ${bytesAfter} bytes (MAX_QUEUE_BYTES is ${maxQueueBytes})`;
    return new QueueException(QueueExceptionCode.QueueFull, `the queue of connection ${connectionId} is full: ${which}`);
  }

  /** One publish per connection per batch, after the commit, without delaying the replies. */
  private announceAdded(items: AddItem[], results: (InsertedMessage | undefined)[]): void {
    const perConnection = new Map<string, { messages: AvailableMessage[]; items: AddItem[] }>();
    items.forEach((item, index) => {
      const row = results[index];
      if (!row) return;
      let group = perConnection.get(row.connectionId);
      if (!group) perConnection.set(row.connectionId, (group = { messages: [], items: [] }));
      group.messages.push({
        id: row.id,
        receivedAt: row.receivedAt.toISOString(),
        payload: item.message.payloadBytes <= INLINE_PAYLOAD_BYTES ? item.message.payload : undefined,
        claimedFor: row.claimed ? item.claimedFor : undefined,
      });
      group.items.push(item);
    });
    for (const [connectionId, group] of perConnection) {
      // Messages inserted claimed for a session that nobody ends up delivering to (it ended while the INSERT
      // ran, or the notification failed) must not wait for the redelivery timeout: pending again now.
      const releaseClaimed = () => {
        const claimed = group.messages.filter((message) => message.claimedFor !== undefined).map((message) => message.id);
        if (claimed.length > 0) void this.releaseQuietly(connectionId, claimed);
      };
      this.pubsub.publish({ connectionId, messages: group.messages }).then(
        (receivers) => {
          if (this.publishFailing) this.logger.log('Live notifications work again');
          this.publishFailing = false;
          // The newest token of the batch, even if the last add came without one: it is the device's latest.
          const token = [...group.items].reverse().find((item) => item.params.pushNotificationToken !== undefined)?.params.pushNotificationToken;
          if (receivers > 0) {
            // Live now; the token is kept for when the device goes away (a session end may need it at once).
            if (token) this.push.rememberToken(connectionId, token);
            return;
          }
          releaseClaimed();
          const last = group.items[group.items.length - 1];
          this.push.notify({ connectionId, messageId: last.message.id, token, reason: 'added' });
        },
        (error: unknown) => {
          // The message is committed and takeable; only the instant notification is missed. Logged once per
          // outage: at thousands of adds per second, a line per batch would bury everything else.
          if (!this.publishFailing) this.logger.warn(`Live notifications are failing (messages stay takeable): ${(error as Error).message}`);
          this.publishFailing = true;
          releaseClaimed();
        },
      );
    }
  }

  /** `encryptedMessage` is the stored JSON text, spliced into the response as it is (see RawJson). */
  async takeFromQueue(params: TakeFromQueueParams): Promise<TakenMessage[]> {
    const limit = Math.min(params.limit ?? this.config.maxTakeMessages, this.config.maxTakeMessages);
    const rows = await this.messages.take({
      connectionId: params.connectionId,
      recipientDid: params.recipientDid,
      limit,
      limitBytes: params.limitBytes ?? Number.MAX_SAFE_INTEGER,
      frameBudgetBytes: this.config.maxFrameBytes - RESPONSE_ENVELOPE_BYTES,
      frameOverheadBytes: MESSAGE_ENVELOPE_BYTES,
      deleteMessages: params.deleteMessages ?? false,
      sendingTimeoutMs: this.config.redeliveryTimeoutMs,
      claimedBy: this.localSession(params.connectionId)?.token,
    });
    this.metrics.messagesTaken.inc(rows.length);
    if (params.deleteMessages) this.metrics.messagesRemoved.inc(rows.length);
    return rows.map((row) => ({
      id: row.id,
      receivedAt: row.receivedAt.toISOString(),
      encryptedMessage: new RawJson(row.payload as string),
    }));
  }

  getAvailableMessageCount(params: GetAvailableMessageCountParams): Promise<number> {
    return this.messages.countPending(params.connectionId, params.recipientDid);
  }

  async getQueueStats(params: GetQueueStatsParams): Promise<QueueStats> {
    const stats = await this.messages.stats(params.connectionId);
    return { ...stats, oldestReceivedAt: stats.oldestReceivedAt?.toISOString() ?? null };
  }

  /**
   * Deletes expired messages if this instance wins the fleet's sweep lock; undefined when another instance is
   * sweeping. Counted per connection, so the caller can log aggregates, never a line per message.
   */
  async deleteExpired(batchSize: number, maxBatches: number, pauseMs: number): Promise<ExpiredCount[] | undefined> {
    const expired = await this.messages.deleteExpired(batchSize, maxBatches, pauseMs);
    if (expired) this.metrics.messagesExpired.inc(expired.reduce((sum, entry) => sum + entry.messages, 0));
    return expired;
  }

  async removeMessages(params: RemoveMessagesParams): Promise<void> {
    if (params.messageIds.length === 0) return;
    this.metrics.messagesRemoved.inc(await this.messages.remove(params.connectionId, params.messageIds));
  }

  async removeAllMessages(params: RemoveAllMessagesParams): Promise<void> {
    this.metrics.messagesRemoved.inc(await this.messages.removeAll(params.connectionId, params.recipientDid));
  }

  /**
   * Live delivery: moves still-pending messages to sending for session `token`; returns those it moved. Claims
   * arriving together (many connections notified at once) share one statement, like adds.
   */
  claim(connectionId: string, messages: AvailableMessage[], token: number): Promise<StoredMessage[]> {
    return this.claims.submit({ connectionId, messages, token });
  }

  private async flushClaims(items: ClaimItem[]): Promise<StoredMessage[][]> {
    const rows = await this.messages.claim(
      items.flatMap(({ connectionId, messages, token }) =>
        messages.map((message) => ({ connectionId, id: message.id, wantPayload: message.payload === undefined, token })),
      ),
      this.config.redeliveryTimeoutMs,
    );
    const byKey = new Map(rows.map((row) => [`${row.connectionId}\u0000${row.id}`, row]));
    return items.map(({ connectionId, messages }) =>
      messages.flatMap((message) => {
        const key = `${connectionId}\u0000${message.id}`;
        const row = byKey.get(key);
        byKey.delete(key); // a message announced twice is claimed once, for the first
        return row ? [row] : [];
      }),
    );
  }

  /** Claimed messages that could not be sent go back to pending at once instead of at the timeout. */
  async release(connectionId: string, ids: string[]): Promise<void> {
    this.metrics.messagesRedelivered.inc({ reason: 'undeliverable' }, await this.messages.release(connectionId, ids));
  }

  /** Releases claimed messages that could not be sent; a failure only delays them to the redelivery timeout. */
  async releaseQuietly(connectionId: string, ids: string[]): Promise<void> {
    await this.release(connectionId, ids).catch((error: unknown) =>
      this.logger.warn(`Releasing ${ids.length} messages of ${connectionId} failed (they return at the redelivery timeout): ${(error as Error).message}`),
    );
  }

  /** A new live session holds the connection: what was in flight to older sessions, or taken, is pending again. */
  async releaseForNewSession(connectionId: string, token: number): Promise<void> {
    this.metrics.messagesRedelivered.inc({ reason: 'session' }, await this.messages.releaseForNewSession(connectionId, token));
  }

  /**
   * An instance died: what was claimed through it is pending again, and the devices of those connections may need
   * a wake-up (the push port checks that no session holds them anywhere by now).
   */
  async releaseForDeadInstance(instanceId: string): Promise<number> {
    const connections = await this.messages.releaseForDeadInstance(instanceId);
    let released = 0;
    for (const { connectionId, released: count, lastMessageId } of connections) {
      released += count;
      this.push.notify({ connectionId, messageId: lastMessageId, reason: 'released' });
    }
    this.metrics.messagesRedelivered.inc({ reason: 'instance' }, released);
    return released;
  }

  /**
   * These sessions ended: their in-flight messages are pending again (in chunks, one statement each), and with no
   * session left anywhere the device is woken to pick them up (the push port checks).
   */
  async releaseForEndedSessions(sessions: { connectionId: string; token: number }[]): Promise<void> {
    for (let start = 0; start < sessions.length; start += RELEASE_CHUNK) {
      const connections = await this.messages.releaseForEndedSessions(sessions.slice(start, start + RELEASE_CHUNK));
      let released = 0;
      for (const { connectionId, released: count, lastMessageId } of connections) {
        released += count;
        this.push.notify({ connectionId, messageId: lastMessageId, reason: 'released' });
      }
      this.metrics.messagesRedelivered.inc({ reason: 'session' }, released);
    }
  }

  /** Returns timed-out sending messages to pending and announces them, so a live holder gets them again. */
  async redeliverExpired(batchSize: number): Promise<number> {
    const rows = await this.messages.releaseExpired(batchSize);
    if (rows.length === 0) return 0;
    this.metrics.messagesRedelivered.inc({ reason: 'timeout' }, rows.length);
    const perConnection = new Map<string, AvailableMessage[]>();
    for (const row of rows) {
      const list = perConnection.get(row.connectionId) ?? [];
      list.push({ id: row.id, receivedAt: row.receivedAt.toISOString() });
      perConnection.set(row.connectionId, list);
    }
    for (const [connectionId, messages] of perConnection) {
      const receivers = await this.pubsub.publish({ connectionId, messages });
      if (receivers === 0) this.push.notify({ connectionId, messageId: messages[messages.length - 1].id, reason: 'redelivery' });
    }
    return rows.length;
  }

  /** For /health. */
  ping(): Promise<void> {
    return this.messages.ping();
  }

  /** True when no add is waiting for or inside a commit (used by graceful shutdown). */
  get idle(): boolean {
    return this.adds.idle;
  }
}
