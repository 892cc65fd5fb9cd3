import { Module } from '@nestjs/common';
import { QueueModule } from '../queue/queue.module';
import { LiveSessionService } from './live-session.service';

@Module({
  imports: [QueueModule],
  providers: [LiveSessionService],
  exports: [LiveSessionService],
})
export class LiveSessionModule {}
