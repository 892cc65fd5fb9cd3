import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database';
import { DeliveryModule } from '../delivery';
import { ExpiryScheduler } from './expiry.scheduler';
import { QueueTotalsGauges } from './queue-totals.gauges';
import { QueueService } from './queue.service';

/** The queue's methods (add, take, count, stats, remove), the expiry sweep and the queue's gauges. */
@Module({
  imports: [DatabaseModule, DeliveryModule],
  providers: [QueueService, ExpiryScheduler, QueueTotalsGauges],
  exports: [QueueService],
})
export class QueueModule {}
