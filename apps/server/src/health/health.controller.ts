import { Controller, Get, Header, HttpStatus, Res } from '@nestjs/common';
import type { Response } from 'express';
import { DatabaseExecutor } from '../database';
import { LiveSessionService } from '../live-session';
import { MetricsService } from '../metrics';
import { PubSubPort } from '../pubsub';

const POSTGRES_CHECK_TIMEOUT_MS = 2_000;

/**
 * Unauthenticated on purpose: load balancers and Prometheus must reach them without a token. Reads the other modules
 * through their facades (a round trip to PostgreSQL, the pub/sub transport's state, the live-session count); none of
 * them knows about this one.
 */
@Controller()
export class HealthController {
  constructor(
    private readonly database: DatabaseExecutor,
    private readonly pubsub: PubSubPort,
    private readonly sessions: LiveSessionService,
    private readonly metrics: MetricsService,
  ) {}

  @Get('health')
  async health(@Res() response: Response): Promise<void> {
    const started = Date.now();
    let postgres: { status: 'up' | 'down'; latencyMs?: number; error?: string };
    try {
      await Promise.race([
        this.database.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('timed out')), POSTGRES_CHECK_TIMEOUT_MS).unref()),
      ]);
      postgres = { status: 'up', latencyMs: Date.now() - started };
    } catch (error) {
      postgres = { status: 'down', error: (error as Error).message };
    }
    const pubsub = this.pubsub.health();
    const up = postgres.status === 'up';
    response.status(up ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE).json({
      status: !up ? 'down' : pubsub.status === 'up' ? 'ok' : 'degraded',
      checks: { postgres, pubsub },
      liveSessions: this.sessions.size,
    });
  }

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async metricsText(@Res() response: Response): Promise<void> {
    response.setHeader('Content-Type', this.metrics.registry.contentType);
    response.send(await this.metrics.registry.metrics());
  }
}
