import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config';
import { DeliveryService } from './delivery.service';

const BATCH_SIZE = 1000;

/**
 * Returns messages that were taken or notified but not acknowledged within REDELIVERY_TIMEOUT_MS to pending.
 * Each instance sweeps; the UPDATE with SKIP LOCKED hands every expired row to exactly one of them.
 */
@Injectable()
export class RedeliveryScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(RedeliveryScheduler.name);
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly delivery: DeliveryService,
  ) {}

  onApplicationBootstrap(): void {
    // A quarter of the timeout keeps a message at most 25% late, within 0.1-5 s so the sweep stays cheap.
    const interval = Math.min(5_000, Math.max(100, Math.floor(this.config.redeliveryTimeoutMs / 4)));
    this.timer = setInterval(() => {
      if (!this.sweeping) this.sweeping = this.sweep().finally(() => (this.sweeping = undefined));
    }, interval);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  private async sweep(): Promise<void> {
    try {
      while ((await this.delivery.redeliverExpired(BATCH_SIZE)) === BATCH_SIZE) {
        // A full batch means more may be waiting; keep going before the next tick.
      }
    } catch (error) {
      // Nothing is lost: the rows stay sending and the next tick tries again.
      this.logger.warn(`Redelivery sweep failed, retrying at the next tick: ${(error as Error).message}`);
    }
  }
}
