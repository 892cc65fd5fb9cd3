import { Module } from '@nestjs/common';
import { MessageRepository } from './message.repository';
import { QueueService } from './queue.service';
import { RedeliveryScheduler } from './redelivery.scheduler';

@Module({
  providers: [MessageRepository, QueueService, RedeliveryScheduler],
  exports: [QueueService],
})
export class QueueModule {}
