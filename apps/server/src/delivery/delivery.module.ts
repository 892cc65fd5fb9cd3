import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database';
import { PubSubModule } from '../pubsub';
import { PushModule } from '../push';
import { DeliveryService } from './delivery.service';
import { RedeliveryScheduler } from './redelivery.scheduler';

/** Post-commit delivery: a local holder, a holder elsewhere (pub/sub), or nobody (push); and the redelivery sweep. */
@Module({
  imports: [DatabaseModule, PubSubModule, PushModule],
  providers: [DeliveryService, RedeliveryScheduler],
  exports: [DeliveryService],
})
export class DeliveryModule {}
