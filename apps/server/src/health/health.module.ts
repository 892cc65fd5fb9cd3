import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database';
import { LiveSessionModule } from '../live-session';
import { PubSubModule } from '../pubsub';
import { HealthController } from './health.controller';

/** GET /health and GET /metrics. */
@Module({
  imports: [DatabaseModule, PubSubModule, LiveSessionModule],
  controllers: [HealthController],
})
export class HealthModule {}
