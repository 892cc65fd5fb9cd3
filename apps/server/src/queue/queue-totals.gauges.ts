import { Inject, Injectable } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { APP_CONFIG, AppConfig } from '../config';
import { MessageRepository, QueueTotals } from '../database';
import { MetricsService } from '../metrics';

/** Scrapes within this interval share one totals query. */
const TOTALS_CACHE_MS = 1000;

/**
 * Fleet-wide queue gauges, read from PostgreSQL when Prometheus scrapes (at most once per second across scrapes),
 * registered on the instance's registry like every other metric.
 */
@Injectable()
export class QueueTotalsGauges {
  private cache: { at: number; value: Promise<QueueTotals> } | undefined;

  constructor(
    private readonly messages: MessageRepository,
    metrics: MetricsService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    // The bound of the oldest message's age: alerts compare the age with it (messages about to expire unread).
    new Gauge({
      name: 'mpr_message_ttl_seconds',
      help: 'Configured message life (MESSAGE_TTL_MS), in seconds',
      registers: [metrics.registry],
    }).set(config.retention.messageTtlMs / 1000);
    this.gauge(metrics, 'mpr_pending_messages', 'Messages waiting to be taken (all connections)', (totals) => totals.pending);
    this.gauge(metrics, 'mpr_queued_bytes', 'Payload bytes of pending and sending messages (all connections)', (totals) => totals.bytes);
    this.gauge(metrics, 'mpr_oldest_pending_message_age_seconds', 'Age of the oldest pending message (0 when none)', (totals) =>
      totals.oldestPendingReceivedAt ? (Date.now() - totals.oldestPendingReceivedAt.getTime()) / 1000 : 0,
    );
  }

  private gauge(metrics: MetricsService, name: string, help: string, value: (totals: QueueTotals) => number): void {
    const totals = () => this.totals();
    new Gauge({
      name,
      help,
      registers: [metrics.registry],
      async collect() {
        // NaN, Prometheus' "unknown", while PostgreSQL cannot answer: the other metrics are still served.
        const read = await totals().catch(() => null);
        this.set(read ? value(read) : NaN);
      },
    });
  }

  private totals(): Promise<QueueTotals> {
    const now = Date.now();
    if (!this.cache || now - this.cache.at > TOTALS_CACHE_MS) this.cache = { at: now, value: this.messages.totals() };
    return this.cache.value;
  }
}
