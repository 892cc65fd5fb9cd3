import { DataSource } from 'typeorm';
import { MIGRATIONS } from './migrations';

/** Arbitrary constant shared by every instance: only one of them runs migrations at a time. */
const MIGRATION_LOCK_KEY = 0x6d707231; // "mpr1"

export interface DataSourceOptions {
  url: string;
  poolSize: number;
  applicationName?: string;
}

/** Builds the TypeORM DataSource. `synchronize` stays off: the schema changes only through migrations. */
export function createDataSource(options: DataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    synchronize: false,
    migrationsRun: false,
    migrations: MIGRATIONS,
    logging: false,
    applicationName: options.applicationName ?? 'message-pickup-repository',
    extra: {
      max: options.poolSize,
      // Fail a call fast when PostgreSQL is gone instead of letting it hang until the client times out.
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
    },
  });
}

/**
 * Runs pending migrations under a session-level advisory lock, so instances that boot together apply each
 * migration once; the others wait, then find nothing left to do.
 */
export async function runMigrationsLocked(dataSource: DataSource): Promise<string[]> {
  const lockRunner = dataSource.createQueryRunner();
  await lockRunner.connect();
  try {
    await lockRunner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((migration) => migration.name);
  } finally {
    await lockRunner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).finally(() => lockRunner.release());
  }
}
