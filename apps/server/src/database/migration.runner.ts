import { DataSource } from 'typeorm';
import { MIGRATIONS } from './migrations';

/** Arbitrary constant shared by every instance: only one of them runs migrations at a time. */
const MIGRATION_LOCK_KEY = 0x6d707231; // "mpr1"

/**
 * Applies the committed migrations that are not applied yet and resolves with their names. TypeORM runs them (and
 * nothing else: queries go through the `DatabaseExecutor`'s own pool) on a short-lived DataSource of two
 * connections, under a session-level advisory lock, so instances that boot together apply each migration once; the
 * others wait, then find nothing left to do. `synchronize` stays off: the schema changes only through migrations.
 */
export async function runMigrations(url: string, applicationName = 'message-pickup-repository'): Promise<string[]> {
  const dataSource = new DataSource({
    type: 'postgres',
    url,
    synchronize: false,
    migrationsRun: false,
    migrations: MIGRATIONS,
    logging: false,
    applicationName,
    // One connection holds the lock, the other runs the migrations.
    extra: { max: 2, connectionTimeoutMillis: 5_000 },
  });
  await dataSource.initialize();
  try {
    const lockRunner = dataSource.createQueryRunner();
    await lockRunner.connect();
    try {
      await lockRunner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      return applied.map((migration) => migration.name);
    } finally {
      await lockRunner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).finally(() => lockRunner.release());
    }
  } finally {
    await dataSource.destroy();
  }
}
