import { Module } from '@nestjs/common';
import { ExpiryScheduler } from './expiry.scheduler';
import { MessageRepository } from './message.repository';
import { QueueService } from './queue.service';
import { RedeliveryScheduler } from './redelivery.scheduler';

@Module({
  providers: [MessageRepository, QueueService, RedeliveryScheduler, ExpiryScheduler],
  exports: [QueueService],
})
export class QueueModule {}
