import { Controller, Get, Header, HttpStatus, Res } from '@nestjs/common';
import type { Response } from 'express';
import { LiveSessionService } from '../live-session/live-session.service';
import { PubSubPort } from '../pubsub/pubsub.port';
import { QueueService } from '../queue/queue.service';
import { MetricsService } from './metrics.service';

const POSTGRES_CHECK_TIMEOUT_MS = 2_000;

/** Unauthenticated on purpose: load balancers and Prometheus must reach them without a token. */
@Controller()
export class HealthController {
  constructor(
    private readonly queue: QueueService,
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
        this.queue.ping(),
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
