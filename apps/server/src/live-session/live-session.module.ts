import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { createRedisClient } from '../pubsub/redis-client.factory';
import { QueueModule } from '../queue/queue.module';
import { InProcessSessionRegistry } from './in-process-session.registry';
import { LiveSessionService } from './live-session.service';
import { RedisSessionRegistry } from './redis-session.registry';
import { SessionRegistryPort } from './session-registry.port';

@Module({
  imports: [QueueModule],
  providers: [
    LiveSessionService,
    {
      provide: SessionRegistryPort,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): SessionRegistryPort =>
        config.redis.mode === 'none'
          ? new InProcessSessionRegistry()
          : new RedisSessionRegistry(createRedisClient(config.redis, 'publisher', `mpr-sessions-${config.instanceId}`), config.instanceId, config.sessionLeaseMs),
    },
  ],
  exports: [LiveSessionService],
})
export class LiveSessionModule {}
