import { Inject, Injectable } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { APP_CONFIG, AppConfig } from '../config';
import { DatabaseExecutor } from '../database';
import { InstanceLifecycle } from '../lifecycle';
import { MetricsService } from '../metrics';

const POSTGRES_CHECK_TIMEOUT_MS = 2_000;

export interface PostgresCheck {
  status: 'up' | 'down';
  latencyMs?: number;
  error?: string;
}

export interface Readiness {
  ready: boolean;
  postgres: PostgresCheck;
  migrationsDone: boolean;
  draining: boolean;
}

/**
 * Whether this instance should get traffic: PostgreSQL answers a round trip, the migrations are applied, and it is not
 * draining after SIGTERM. Redis is not part of it: without Redis the instance still stores and serves every message
 * (live delivery across instances waits), so taking it out of rotation would only make things worse. The same check
 * backs GET /health/ready and the `mpr_ready`, `mpr_postgres_up` and `mpr_draining` gauges.
 */
@Injectable()
export class ReadinessProbe {
  constructor(
    private readonly database: DatabaseExecutor,
    private readonly lifecycle: InstanceLifecycle,
    metrics: MetricsService,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    // One check per scrape for the three gauges: a scrape collects them all at once.
    let pending: Promise<Readiness> | undefined;
    const shared = () => (pending ??= this.check().finally(() => setImmediate(() => (pending = undefined))));
    const gauge = (name: string, help: string, value: (readiness: Readiness) => boolean) =>
      new Gauge({
        name,
        help,
        registers: [metrics.registry],
        async collect() {
          this.set(value(await shared()) ? 1 : 0);
        },
      });
    gauge(
      'mpr_ready',
      'Whether this instance is ready for traffic (as GET /health/ready): PostgreSQL answers, migrations done, not draining',
      (r) => r.ready,
    );
    gauge('mpr_postgres_up', 'Whether PostgreSQL answered a round trip from this instance', (r) => r.postgres.status === 'up');
    gauge('mpr_draining', 'Whether this instance is draining after SIGTERM', (r) => r.draining);
    new Gauge({
      name: 'mpr_instance_info',
      help: 'Always 1; names this instance (INSTANCE_ID) for dashboards',
      labelNames: ['instance_id'] as const,
      registers: [metrics.registry],
    }).set({ instance_id: config.instanceId }, 1);
  }

  /** A real round trip to PostgreSQL, bounded, whatever the executor currently thinks of it. */
  async postgres(): Promise<PostgresCheck> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.database.ping(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), POSTGRES_CHECK_TIMEOUT_MS))),
      ]);
      return { status: 'up', latencyMs: Date.now() - started };
    } catch (error) {
      return { status: 'down', error: (error as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  async check(): Promise<Readiness> {
    const postgres = await this.postgres();
    const migrationsDone = this.lifecycle.migrationsDone;
    const draining = this.lifecycle.draining;
    return { ready: postgres.status === 'up' && migrationsDone && !draining, postgres, migrationsDone, draining };
  }
}
