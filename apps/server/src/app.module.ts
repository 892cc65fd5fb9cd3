import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './health/metrics.module';
import { LiveSessionModule } from './live-session/live-session.module';
import { PubSubModule } from './pubsub/pubsub.module';
import { PushModule } from './push/push.module';
import { QueueModule } from './queue/queue.module';
import { RpcModule } from './rpc/rpc.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        MetricsModule,
        DatabaseModule.forRoot(),
        PubSubModule,
        PushModule,
        QueueModule,
        LiveSessionModule,
        RpcModule,
        HealthModule,
      ],
    };
  }
}
