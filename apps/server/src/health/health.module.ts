import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database';
import { LiveSessionModule } from '../live-session';
import { PubSubModule } from '../pubsub';
import { HealthController } from './health.controller';
import { ReadinessProbe } from './readiness.probe';

/** GET /health, /health/live, /health/ready and /metrics, and the readiness gauges. */
@Module({
  imports: [DatabaseModule, PubSubModule, LiveSessionModule],
  controllers: [HealthController],
  providers: [ReadinessProbe],
})
export class HealthModule {}
