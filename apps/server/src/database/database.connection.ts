import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { createDataSource, runMigrationsLocked } from './database.factory';
import { EmbeddedPostgresRunner } from './embedded-postgres.runner';

/**
 * Owns the PostgreSQL side of the process: the embedded server when no DATABASE_URL is given, the pool,
 * and the migrations. Closed last at shutdown, after in-flight requests have drained.
 */
export class DatabaseConnection {
  private readonly logger = new Logger('Database');

  private constructor(
    readonly dataSource: DataSource,
    private readonly embedded: EmbeddedPostgresRunner | undefined,
  ) {}

  static async open(config: AppConfig): Promise<DatabaseConnection> {
    const logger = new Logger('Database');
    let url = config.databaseUrl;
    let embedded: EmbeddedPostgresRunner | undefined;
    if (!url) {
      embedded = new EmbeddedPostgresRunner({
        dataDir: config.dataDir,
        port: config.embeddedPostgresPort,
        database: 'message_pickup',
        log: (level, message) => {
          if (level === 'error') logger.error(message);
          else if (level === 'warn') logger.warn(message);
          else if (level === 'info') logger.log(message);
          else logger.debug(message);
        },
      });
      url = await embedded.start();
      logger.log(`Embedded PostgreSQL started with its data in ${config.dataDir}`);
    }
    const dataSource = createDataSource({ url, poolSize: config.databasePoolSize });
    try {
      await dataSource.initialize();
      const applied = await runMigrationsLocked(dataSource);
      if (applied.length > 0) logger.log(`Applied migrations: ${applied.join(', ')}`);
    } catch (error) {
      if (dataSource.isInitialized) await dataSource.destroy();
      await embedded?.stop();
      throw error;
    }
    return new DatabaseConnection(dataSource, embedded);
  }

  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    if (this.embedded) {
      await this.embedded.stop();
      this.logger.log('Embedded PostgreSQL stopped');
    }
  }
}
