import { Global, Module } from '@nestjs/common';
import { InProcessPubSubAdapter } from './in-process-pubsub.adapter';
import { PubSubPort } from './pubsub.port';

/** Chooses the pub/sub transport. Single instance: in-process. */
@Global()
@Module({
  providers: [{ provide: PubSubPort, useClass: InProcessPubSubAdapter }],
  exports: [PubSubPort],
})
export class PubSubModule {}
