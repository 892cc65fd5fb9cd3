/**
 * What the clients of a fault run saw, message by message, and the verdict on it.
 *
 * Definitions (at-least-once delivery, as the README promises):
 * - acknowledged: `addMessage` answered with a result for this messageId;
 * - delivered: the id reached the client, in a `messagesReceived` notification to a live-session holder
 *   ('live'), in a `takeFromQueue` result during the run ('take'), or in the final audit take ('final-take',
 *   i.e. it was still takeable at the end);
 * - lost: acknowledged and never delivered, not even by the final audit;
 * - redelivered: a second (or later) delivery of an id that the client had not yet removed, after something
 *   that the README names as a cause of redelivery happened on its connection since the previous delivery:
 *   a session (re-)registration, the end of the holder's socket or session, a server crash, or the redelivery
 *   timeout (possible once REDELIVERY_TIMEOUT_MS has passed since the first add attempt); also a delivery after removal when the client itself re-added the id afterwards (an add retried
 *   after a lost answer), or had a re-add of it in flight when the removal was answered (the server applies an add
 *   when it gets to it: one that lands after the removal queues the id anew, as a new message);
 * - duplicated: any other second delivery, that is one after `removeMessages` for that id had been answered
 *   (and no re-add was sent since; for a take, answered before the take was sent), or a second delivery while the first was still unacknowledged with no
 *   cause in between (the same message in flight to two holders, or notified twice to one).
 */

export type DeliveryKind = 'live' | 'take' | 'final-take';

interface Delivery {
  at: number;
  /**
   * For a take: when it was sent. A take sent before a removal of the same id was answered may still return that
   * id (the two statements ran concurrently), and its answer can be read in the same instant as the removal's.
   */
  askedAt?: number;
  holder: string;
  kind: DeliveryKind;
}

interface MessageRecord {
  connectionId: string;
  /** Times each add attempt of this id was sent. */
  attempts: number[];
  /** Add attempts that went out, from sending to their answer (or failure). */
  sends: { sentAt: number; settledAt: number }[];
  firstAttemptAt: number;
  acknowledgedAt?: number;
  failedWith?: string;
  deliveries: Delivery[];
  /** When a removeMessages covering the id was first answered `true`. */
  removedAt?: number;
}

export interface LedgerVerdict {
  attempted: number;
  acknowledged: number;
  /** Adds refused for good (non-retryable error or retries exhausted): not acknowledged, not expected. */
  refused: number;
  delivered: number;
  deliveredLive: number;
  takenDuringRun: number;
  takeableAtEnd: number;
  lost: number;
  duplicated: number;
  redelivered: number;
  /** Deliveries of ids no client ever sent (must be 0). */
  unknown: number;
  lostIds: string[];
  duplicatedDetails: string[];
}

export class DeliveryLedger {
  private readonly messages = new Map<string, MessageRecord>();
  /** Per connection: times at which a redelivery became legitimate. */
  private readonly causes = new Map<string, number[]>();
  private readonly globalCauses: number[] = [];
  private readonly unknownDeliveries: string[] = [];
  /** Live notifications in arrival order (time, id), for recovery measurements. */
  readonly liveLog: { at: number; id: string; holder: string }[] = [];
  /** Acknowledgement times in order, for recovery measurements. */
  readonly ackLog: { at: number; id: string }[] = [];
  lastDeliveryAt = 0;

  constructor(private readonly redeliveryTimeoutMs: number) {}

  attempt(id: string, connectionId: string, at = Date.now()): void {
    const record = this.messages.get(id);
    if (record) record.attempts.push(at);
    else this.messages.set(id, { connectionId, attempts: [at], sends: [], firstAttemptAt: at, deliveries: [] });
  }

  /** The add attempt sent at `sentAt` got its answer, or failed, now. */
  attemptSettled(id: string, sentAt: number, at = Date.now()): void {
    this.require(id).sends.push({ sentAt, settledAt: at });
  }

  acknowledged(id: string, at = Date.now()): void {
    const record = this.require(id);
    if (record.acknowledgedAt === undefined) {
      record.acknowledgedAt = at;
      this.ackLog.push({ at, id });
    }
  }

  refused(id: string, reason: string): void {
    this.require(id).failedWith = reason;
  }

  /** Something after which a redelivery on this connection is legitimate (registration, socket end...). */
  cause(connectionId: string, at = Date.now()): void {
    const list = this.causes.get(connectionId);
    if (list) list.push(at);
    else this.causes.set(connectionId, [at]);
  }

  /** A cause for every connection at once (an instance crashed, a fault began). */
  causeEverywhere(at = Date.now()): void {
    this.globalCauses.push(at);
  }

  delivered(ids: string[], holder: string, kind: DeliveryKind, at = Date.now(), askedAt?: number): void {
    this.lastDeliveryAt = at;
    for (const id of ids) {
      const record = this.messages.get(id);
      if (!record) {
        this.unknownDeliveries.push(id);
        continue;
      }
      record.deliveries.push({ at, askedAt, holder, kind });
      if (kind === 'live') this.liveLog.push({ at, id, holder });
    }
  }

  removed(ids: string[], at = Date.now()): void {
    for (const id of ids) {
      const record = this.messages.get(id);
      if (record && record.removedAt === undefined) record.removedAt = at;
    }
  }

  isAcknowledged(id: string): boolean {
    return this.messages.get(id)?.acknowledgedAt !== undefined;
  }

  firstAttemptAt(id: string): number {
    return this.require(id).firstAttemptAt;
  }

  /** Acknowledged ids not delivered yet (what the final audit still has to find). */
  undelivered(): string[] {
    const ids: string[] = [];
    for (const [id, record] of this.messages) if (record.acknowledgedAt !== undefined && record.deliveries.length === 0) ids.push(id);
    return ids;
  }

  /**
   * After `at` (the end of a fault): how long until the first add was acknowledged, and until the first live
   * notification of a message first sent after `at` (so a backlog flushed at recovery does not count).
   */
  recoveryAfter(at: number): { addMs?: number; liveMs?: number } {
    const add = this.ackLog.find((entry) => entry.at >= at);
    const live = this.liveLog.find((entry) => entry.at >= at && this.require(entry.id).firstAttemptAt >= at);
    return { addMs: add && add.at - at, liveMs: live && live.at - at };
  }

  connectionOf(id: string): string {
    return this.require(id).connectionId;
  }

  verdict(): LedgerVerdict {
    const verdict: LedgerVerdict = {
      attempted: this.messages.size,
      acknowledged: 0,
      refused: 0,
      delivered: 0,
      deliveredLive: 0,
      takenDuringRun: 0,
      takeableAtEnd: 0,
      lost: 0,
      duplicated: 0,
      redelivered: 0,
      unknown: this.unknownDeliveries.length,
      lostIds: [],
      duplicatedDetails: [],
    };
    for (const [id, record] of this.messages) {
      if (record.acknowledgedAt !== undefined) verdict.acknowledged++;
      else if (record.failedWith !== undefined) verdict.refused++;
      if (record.deliveries.length === 0) {
        if (record.acknowledgedAt !== undefined) {
          verdict.lost++;
          verdict.lostIds.push(id);
        }
        continue;
      }
      verdict.delivered++;
      const deliveries = [...record.deliveries].sort((a, b) => a.at - b.at);
      const first = deliveries[0];
      if (first.kind === 'live') verdict.deliveredLive++;
      else if (first.kind === 'take') verdict.takenDuringRun++;
      else verdict.takeableAtEnd++;
      for (let k = 1; k < deliveries.length; k++) {
        const previous = deliveries[k - 1];
        const current = deliveries[k];
        if (this.isLegitimateRedelivery(record, previous, current)) verdict.redelivered++;
        else {
          verdict.duplicated++;
          if (verdict.duplicatedDetails.length < 20) {
            verdict.duplicatedDetails.push(
              `${id} (connection ${record.connectionId}): ${describe(previous)} then ${describe(current)}` +
                (record.removedAt !== undefined ? `, removed at ${iso(record.removedAt)}` : ''),
            );
          }
        }
      }
    }
    return verdict;
  }

  private isLegitimateRedelivery(record: MessageRecord, previous: Delivery, current: Delivery): boolean {
    if (record.removedAt !== undefined && record.removedAt <= (current.askedAt ?? current.at)) {
      // Removed before this delivery was asked for: only a re-add by the client since then explains it.
      const removedAt = record.removedAt;
      return (
        record.attempts.some((sentAt) => sentAt >= removedAt) ||
        record.sends.some((send) => send.sentAt <= removedAt && send.settledAt >= removedAt)
      );
    }
    // The server marked the message sending at some time after its first add attempt; a consumer that reads
    // late (slow, paused) sees the first delivery long after that, so the timeout is measured from the only
    // sure lower bound: a second delivery this long after the first attempt may be a timeout redelivery.
    if (current.at - record.firstAttemptAt >= this.redeliveryTimeoutMs) return true;
    const between = (at: number) => at >= previous.at && at <= current.at;
    return this.globalCauses.some(between) || (this.causes.get(record.connectionId) ?? []).some(between);
  }

  private require(id: string): MessageRecord {
    const record = this.messages.get(id);
    if (!record) throw new Error(`the ledger has no add attempt for ${id}`);
    return record;
  }
}

function iso(at: number): string {
  return new Date(at).toISOString();
}

function describe(delivery: Delivery): string {
  return `${delivery.kind} to ${delivery.holder} at ${iso(delivery.at)}`;
}
