import { Module } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config';
import { RedisConnections, RedisModule } from '../redis';
import { InProcessSessionRegistry } from './in-process-session.registry';
import { RedisSessionRegistry } from './redis-session.registry';
import { SessionRegistryPort } from './session-registry.port';

/** Who holds each connection's live session, fleet-wide: in Redis for a fleet, in this process's memory otherwise. */
@Module({
  imports: [RedisModule],
  providers: [
    {
      provide: SessionRegistryPort,
      inject: [APP_CONFIG, RedisConnections],
      useFactory: (config: AppConfig, redis: RedisConnections | null): SessionRegistryPort =>
        redis ? new RedisSessionRegistry(redis.commands, config.instanceId, config.sessionLeaseMs) : new InProcessSessionRegistry(),
    },
  ],
  exports: [SessionRegistryPort],
})
export class SessionRegistryModule {}
