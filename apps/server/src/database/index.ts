/** The database module's facade: what other modules may use of it. */
export { DatabaseModule } from './database.module';
export { DatabaseExecutor, type StatementRunner } from './database.executor';
export { StorageException, StorageExceptionCode } from './storage.exception';
export { GroupCommitter, ItemFailure } from './group-committer';
export * from './repositories/message.repository';
export * from './repositories/push-token.repository';
export { runMigrations } from './migration.runner';
export { DatabaseUnreachableError } from './database-unreachable.error';
