import { Controller, Get, Header, HttpStatus, Res } from '@nestjs/common';
import type { Response } from 'express';
import { LiveSessionService } from '../live-session';
import { MetricsService } from '../metrics';
import { PubSubPort } from '../pubsub';
import { ReadinessProbe } from './readiness.probe';

/**
 * Unauthenticated on purpose: load balancers, orchestrators and Prometheus must reach them without a token. Reads the
 * other modules through their facades (a round trip to PostgreSQL, the pub/sub transport's state, the live-session
 * count, the instance's lifecycle); none of them knows about this one.
 */
@Controller()
export class HealthController {
  constructor(
    private readonly readiness: ReadinessProbe,
    private readonly pubsub: PubSubPort,
    private readonly sessions: LiveSessionService,
    private readonly metrics: MetricsService,
  ) {}

  /** Each dependency's state; 503 while PostgreSQL does not answer (a Redis outage is `degraded`, still 200). */
  @Get('health')
  @Header('Cache-Control', 'no-store')
  async health(@Res() response: Response): Promise<void> {
    const postgres = await this.readiness.postgres();
    const pubsub = this.pubsub.health();
    const up = postgres.status === 'up';
    response.status(up ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE).json({
      status: !up ? 'down' : pubsub.status === 'up' ? 'ok' : 'degraded',
      checks: { postgres, pubsub },
      liveSessions: this.sessions.size,
    });
  }

  /**
   * Liveness: answers 200 as long as the process and its event loop do; it checks nothing else, so an orchestrator
   * never restarts an instance for an outage of PostgreSQL or Redis, which a restart would not fix.
   */
  @Get('health/live')
  @Header('Cache-Control', 'no-store')
  live(): { status: 'ok'; uptimeSeconds: number } {
    return { status: 'ok', uptimeSeconds: Math.round(process.uptime()) };
  }

  /** Readiness: 200 only while PostgreSQL answers, the migrations are done and the instance is not draining. */
  @Get('health/ready')
  @Header('Cache-Control', 'no-store')
  async ready(@Res() response: Response): Promise<void> {
    const { ready, postgres, migrationsDone, draining } = await this.readiness.check();
    response.status(ready ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE).json({
      status: ready ? 'ready' : 'not-ready',
      checks: { postgres, migrations: migrationsDone ? 'done' : 'pending', draining, pubsub: this.pubsub.health() },
    });
  }

  @Get('metrics')
  @Header('Cache-Control', 'no-store')
  async metricsText(@Res() response: Response): Promise<void> {
    response.setHeader('Content-Type', this.metrics.registry.contentType);
    response.send(await this.metrics.registry.metrics());
  }
}
