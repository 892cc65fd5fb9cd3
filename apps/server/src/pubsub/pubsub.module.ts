import { Module } from '@nestjs/common';
import { RedisConnections, RedisModule } from '../redis';
import { InProcessPubSubAdapter } from './in-process-pubsub.adapter';
import { PubSubHealthGauge } from './pubsub-health.gauge';
import { PubSubPort } from './pubsub.port';
import { RedisPubSubAdapter } from './redis-pubsub.adapter';

/**
 * Chooses the pub/sub transport: in-process when no Redis is configured (single instance), otherwise Redis
 * (`REDIS_URL`: one node, PUBLISH/SUBSCRIBE; `REDIS_CLUSTER_NODES`: a cluster, SPUBLISH/SSUBSCRIBE).
 */
@Module({
  imports: [RedisModule],
  providers: [
    {
      provide: PubSubPort,
      inject: [RedisConnections],
      useFactory: (redis: RedisConnections | null): PubSubPort => (redis ? new RedisPubSubAdapter(redis) : new InProcessPubSubAdapter()),
    },
    PubSubHealthGauge,
  ],
  exports: [PubSubPort],
})
export class PubSubModule {}
