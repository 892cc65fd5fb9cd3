import { Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AppConfig } from '../config/app-config';
import { createDataSource, runMigrationsLocked } from './database.factory';

/**
 * Owns the PostgreSQL side of the process: the pool and the migrations. Closed last at shutdown, after
 * in-flight requests have drained.
 */
export class DatabaseConnection {
  private constructor(readonly dataSource: DataSource) {}

  static async open(config: AppConfig): Promise<DatabaseConnection> {
    const logger = new Logger('Database');
    if (!config.databaseUrl) throw new Error('No DATABASE_URL: main.ts starts the embedded PostgreSQL before the application');
    const dataSource = createDataSource({ url: config.databaseUrl, poolSize: config.databasePoolSize });
    try {
      await dataSource.initialize();
      const applied = await runMigrationsLocked(dataSource);
      if (applied.length > 0) logger.log(`Applied migrations: ${applied.join(', ')}`);
    } catch (error) {
      if (dataSource.isInitialized) await dataSource.destroy();
      throw error;
    }
    return new DatabaseConnection(dataSource);
  }

  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
