import { DynamicModule, Module } from '@nestjs/common';
import { AppConfig, ConfigModule } from './config';
import { HealthModule } from './health';
import { LifecycleModule } from './lifecycle';
import { MetricsModule } from './metrics';
import { RpcModule } from './rpc';

/**
 * The application: the JSON-RPC endpoint and the health endpoints, on the validated configuration. Every other module
 * comes in through the modules that import it (rpc → queue, live-session → delivery → pubsub, push, session registry →
 * database, redis), so Nest starts the deepest first and closes it last.
 */
@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), MetricsModule, LifecycleModule, RpcModule, HealthModule],
    };
  }
}
