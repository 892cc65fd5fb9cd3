export enum StorageExceptionCode {
  /** PostgreSQL unreachable, restarting, out of connections, or the transaction was aborted: safe to retry. */
  Unavailable = 'STORAGE_UNAVAILABLE',
  /** PostgreSQL rejected the statement itself: a bug, not a condition that retrying fixes. */
  QueryFailed = 'STORAGE_QUERY_FAILED',
}

/**
 * SQLSTATE classes (and codes) that describe the server's condition rather than the statement. 25006 (read-only
 * transaction): the connection reached a standby, e.g. a former primary demoted by a failover that a DNS name or a
 * pooler still points at; the failed statement's connection is dropped, and a retry gets a new one.
 */
const UNAVAILABLE_SQLSTATE_PREFIXES = ['08', '53', '57', '58', '40', '25006'];
/**
 * Of those, the ones that mean PostgreSQL itself cannot be reached (connection exceptions, shutting down or
 * starting up); a deadlock or a full disk is retryable too, but says nothing about the next statement.
 */
const UNREACHABLE_SQLSTATE_PREFIXES = ['08', '57P'];
const UNAVAILABLE_NODE_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

/** The one exception repositories throw; the RPC error mapper turns its code into a JSON-RPC error. */
export class StorageException extends Error {
  constructor(
    readonly code: StorageExceptionCode,
    message: string,
    cause?: unknown,
    /** PostgreSQL could not be reached at all (not just this statement failing): later calls would fail too. */
    readonly unreachable = false,
  ) {
    super(message, { cause });
    this.name = 'StorageException';
  }

  /** Classifies a driver error: connection and server-state failures are retryable, statement errors are not. */
  static from(error: unknown): StorageException {
    if (error instanceof StorageException) return error;
    const sqlState = typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : '';
    const message = error instanceof Error ? error.message : String(error);
    const isSqlState = /^[0-9A-Z]{5}$/.test(sqlState);
    const unavailable =
      UNAVAILABLE_NODE_ERRORS.has(sqlState) ||
      (isSqlState && UNAVAILABLE_SQLSTATE_PREFIXES.some((prefix) => sqlState.startsWith(prefix))) ||
      // node-postgres reports pool and socket trouble without a SQLSTATE; a statement error always has one
      // (and its message may well mention "connection_id").
      (!isSqlState && /connect|connection|terminat|timeout|Client has encountered|pool/i.test(message));
    const unreachable =
      UNAVAILABLE_NODE_ERRORS.has(sqlState) ||
      (isSqlState && UNREACHABLE_SQLSTATE_PREFIXES.some((prefix) => sqlState.startsWith(prefix))) ||
      // pg-pool's "timeout exceeded when trying to connect" means every pooled connection stayed busy (load), not
      // that PostgreSQL is gone: failing every call at once for it would turn a slow moment into an outage.
      (!isSqlState && unavailable && !/timeout exceeded when trying to connect/i.test(message));
    return new StorageException(
      unavailable ? StorageExceptionCode.Unavailable : StorageExceptionCode.QueryFailed,
      unavailable ? `Storage unavailable: ${message}` : `Storage query failed: ${message}`,
      error,
      unreachable,
    );
  }
}
