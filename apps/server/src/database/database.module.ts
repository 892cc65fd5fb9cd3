import { Inject, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config';
import { InstanceLifecycle } from '../lifecycle';
import { retryUntilReachable } from './boot-connect.retry';
import { DatabaseExecutor } from './database.executor';
import { runMigrations } from './migration.runner';
import { MessageRepository } from './repositories/message.repository';
import { PushTokenRepository } from './repositories/push-token.repository';

/**
 * PostgreSQL: migrates the schema at boot, then serves every statement through one `DatabaseExecutor` and the
 * repositories built on it. Imported by the modules that need storage; it is the deepest of them, so Nest closes it
 * last, after in-flight requests have drained.
 */
@Module({
  providers: [
    {
      provide: DatabaseExecutor,
      inject: [APP_CONFIG, InstanceLifecycle],
      useFactory: async (config: AppConfig, lifecycle: InstanceLifecycle): Promise<DatabaseExecutor> => {
        const url = config.databaseUrl;
        if (!url) throw new Error('No DATABASE_URL: main.ts starts the embedded PostgreSQL before the application');
        const logger = new Logger('Database');
        const applied = await retryUntilReachable(() => runMigrations(url), { url, timeoutMs: config.databaseConnectTimeoutMs, logger });
        if (applied.length > 0) logger.log(`Applied migrations: ${applied.join(', ')}`);
        lifecycle.markMigrationsDone();
        return new DatabaseExecutor({ url, poolSize: config.databasePoolSize, queryTimeoutMs: config.databaseQueryTimeoutMs });
      },
    },
    MessageRepository,
    PushTokenRepository,
  ],
  exports: [DatabaseExecutor, MessageRepository, PushTokenRepository],
})
export class DatabaseModule implements OnApplicationShutdown {
  constructor(@Inject(DatabaseExecutor) private readonly executor: DatabaseExecutor) {}

  async onApplicationShutdown(): Promise<void> {
    await this.executor.close();
  }
}
