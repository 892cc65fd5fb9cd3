import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig, refLabel } from '../config';
import { QueueService } from './queue.service';

/** Batches per sweep: a backlog larger than this is finished by the next sweeps, never in one long burst. */
const MAX_BATCHES_PER_SWEEP = 1000;
/** Pause between two delete statements of one sweep, so live traffic gets the disk and the locks in between. */
const PAUSE_BETWEEN_BATCHES_MS = 20;
/** Connections named one by one in a sweep's log; beyond them, only a count (a sweep may expire thousands). */
const LOGGED_CONNECTIONS = 50;

/**
 * Deletes expired messages every EXPIRY_SWEEP_INTERVAL_MS. Every instance ticks, but one at a time fleet-wide
 * does the work (a PostgreSQL advisory lock): a second sweeper would only contend for the same rows. Expired
 * messages are already invisible to takes and counts, so a late sweep costs disk space only.
 */
@Injectable()
export class ExpiryScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ExpiryScheduler.name);
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private failing = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly queue: QueueService,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      if (!this.sweeping) this.sweeping = this.sweep().finally(() => (this.sweeping = undefined));
    }, this.config.retention.expirySweepIntervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  /** One sweep; nothing to do when another instance holds the lock. */
  private async sweep(): Promise<void> {
    let expired;
    try {
      expired = await this.queue.deleteExpired(this.config.retention.expirySweepBatch, MAX_BATCHES_PER_SWEEP, PAUSE_BETWEEN_BATCHES_MS);
    } catch (error) {
      // Nothing is at stake but disk space (expired messages are invisible already): the next tick tries again.
      if (!this.failing) this.logger.warn(`Expiry sweep failed, retrying at the next tick: ${(error as Error).message}`);
      this.failing = true;
      return;
    }
    this.failing = false;
    if (!expired || expired.length === 0) return;
    expired.sort((a, b) => b.messages - a.messages);
    const total = expired.reduce((sum, entry) => sum + entry.messages, 0);
    for (const { ref, messages } of expired.slice(0, LOGGED_CONNECTIONS)) {
      this.logger.log(`Expired ${messages} messages of connection ${refLabel(ref)}`);
    }
    const rest = expired.length - LOGGED_CONNECTIONS;
    this.logger.log(`Expiry sweep deleted ${total} messages of ${expired.length} connections${rest > 0 ? ` (${rest} not listed)` : ''}`);
  }
}
