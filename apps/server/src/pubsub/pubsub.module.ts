import { Global, Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { InProcessPubSubAdapter } from './in-process-pubsub.adapter';
import { PubSubPort } from './pubsub.port';
import { RedisPubSubAdapter } from './redis-pubsub.adapter';

/**
 * Chooses the pub/sub transport: in-process when no Redis is configured (single instance), otherwise Redis
 * (`REDIS_URL`: one node, PUBLISH/SUBSCRIBE; `REDIS_CLUSTER_NODES`: a cluster, SPUBLISH/SSUBSCRIBE).
 */
@Global()
@Module({
  providers: [
    {
      provide: PubSubPort,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): PubSubPort =>
        config.redis.mode === 'none' ? new InProcessPubSubAdapter() : new RedisPubSubAdapter(config.redis),
    },
  ],
  exports: [PubSubPort],
})
export class PubSubModule {}
