import { Inject, Module, OnApplicationShutdown, Optional } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config';
import { MetricsService } from '../metrics';
import { RedisConnections } from './redis-connections';

/**
 * Redis for a fleet (REDIS_URL or REDIS_CLUSTER_NODES). Without Redis configured it provides `null`, and every user
 * picks its in-process counterpart.
 */
@Module({
  providers: [
    {
      provide: RedisConnections,
      inject: [APP_CONFIG, MetricsService],
      useFactory: (config: AppConfig, metrics: MetricsService): RedisConnections | null =>
        config.redis.mode === 'none'
          ? null
          : new RedisConnections(config.redis, `mpr-${config.instanceId}`, { commandTimeoutMs: config.redisCommandTimeoutMs, metrics }),
    },
  ],
  exports: [RedisConnections],
})
export class RedisModule implements OnApplicationShutdown {
  constructor(@Optional() @Inject(RedisConnections) private readonly connections: RedisConnections | null) {}

  /** Runs after pub/sub, the session registry and push (they import this module), so their last commands go out. */
  async onApplicationShutdown(): Promise<void> {
    await this.connections?.close();
  }
}
