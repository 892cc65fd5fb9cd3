import { Module } from '@nestjs/common';
import { LiveSessionModule } from '../live-session/live-session.module';
import { QueueModule } from '../queue/queue.module';
import { HealthController } from './health.controller';

@Module({
  imports: [QueueModule, LiveSessionModule],
  controllers: [HealthController],
})
export class HealthModule {}
