import { Logger } from '@nestjs/common';
import { Pool, PoolClient, QueryConfig } from 'pg';
import { Semaphore } from './concurrency.semaphore';
import { StorageException, StorageExceptionCode } from './storage.exception';

/** While PostgreSQL is unreachable, how often a probe checks whether it is back. */
const OUTAGE_PROBE_INTERVAL_MS = 250;

export type Row = Record<string, unknown>;

export interface DatabaseExecutorOptions {
  url: string;
  poolSize: number;
  /** A statement that has not answered by then fails as "storage unavailable" (a stalled network). */
  queryTimeoutMs: number;
  applicationName?: string;
}

/** Runs statements under the executor's rules: one SQL entry point for repositories. */
export interface StatementRunner {
  /**
   * Runs one named (prepared once per connection) statement and resolves with its rows. Every failure leaves as a
   * `StorageException`.
   */
  query<T extends Row>(name: string, text: string, values: unknown[]): Promise<T[]>;
}

/**
 * The one way to PostgreSQL at run time: a `pg` pool of our own (TypeORM only runs the migrations at boot), with the
 * same rules for every repository:
 *
 * - every call has a DATABASE_QUERY_TIMEOUT_MS deadline, from the moment it is made: the wait for a pooled connection
 *   (behind statements stalled on the others) and the statement together; a timed-out statement's connection is
 *   destroyed, so a stalled socket is never reused;
 * - every driver error leaves as a `StorageException` (retryable "unavailable" or a statement failure);
 * - outages fail fast: once a statement fails because PostgreSQL cannot be reached (refused, reset, or no answer
 *   in time), every later call fails at once with the same retryable error instead of each waiting for its own
 *   timeout, while a probe runs in the background; the first probe that gets an answer ends the outage. Nothing
 *   needs a restart.
 */
export class DatabaseExecutor implements StatementRunner {
  private readonly logger = new Logger('Database');
  private readonly pool: Pool;
  private readonly queryTimeoutMs: number;
  private outage: { error: StorageException; since: number; probe: NodeJS.Timeout; probing: boolean } | undefined;
  /** Calls waiting for a pooled connection: an outage fails them at once instead of at their deadlines. */
  private readonly waiting = new Set<(error: StorageException) => void>();
  /** Pooled connections that have our error listener (see `acquire`). */
  private readonly listened = new WeakSet<PoolClient>();
  private closed = false;

  constructor(options: DatabaseExecutorOptions) {
    this.queryTimeoutMs = options.queryTimeoutMs;
    this.pool = new Pool({
      connectionString: options.url,
      max: options.poolSize,
      application_name: options.applicationName ?? 'message-pickup-repository',
      // A new connection that PostgreSQL does not answer is given up (a caller's own deadline may end its wait earlier).
      connectionTimeoutMillis: Math.min(5_000, options.queryTimeoutMs),
      idleTimeoutMillis: 30_000,
      keepAlive: true,
    });
    // An idle pooled connection that PostgreSQL drops (restart, failover) emits here; the pool discards it, and
    // the next statement reports the outage if there is one.
    this.pool.on('error', (error) => this.logger.debug(`Idle database connection closed: ${error.message}`));
  }

  /** Whether calls are currently failing fast because PostgreSQL was found unreachable. */
  get unavailable(): boolean {
    return this.outage !== undefined;
  }

  query<T extends Row>(name: string, text: string, values: unknown[]): Promise<T[]> {
    return this.run<T>(name, text, values, false);
  }

  /**
   * The same statements, at most `permits` of them in flight: for work that shares the pool with the queue but
   * must never take most of it (a storm of push decisions).
   */
  limited(permits: number): StatementRunner {
    const semaphore = new Semaphore(permits);
    return { query: (name, text, values) => semaphore.run(() => this.run(name, text, values, false)) };
  }

  /**
   * Runs `work` on one pooled connection (for session state such as an advisory lock), its statements under the same
   * rules. The connection goes back to the pool only if `work` and `cleanup` succeeded; otherwise it is destroyed,
   * so a lock that could not be released, or a broken socket, never serves another caller.
   */
  async withConnection<T>(work: (runner: StatementRunner) => Promise<T>, cleanup?: (runner: StatementRunner) => Promise<void>): Promise<T> {
    if (this.outage) throw this.outage.error;
    const client = await this.acquire(Date.now() + this.queryTimeoutMs, false);
    const runner: StatementRunner = { query: (name, text, values) => this.runOn(client, name, text, values) };
    let failure: Error | undefined;
    try {
      return await work(runner);
    } catch (error) {
      failure = error as Error;
      throw error;
    } finally {
      if (cleanup) await cleanup(runner).catch((error: unknown) => (failure ??= error as Error));
      client.release(failure);
    }
  }

  /** For /health and the outage probe: a real round trip, also during an outage (it ends the outage when it succeeds). */
  async ping(): Promise<void> {
    await this.run('ping', 'SELECT 1', [], true);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.outage) clearInterval(this.outage.probe);
    this.outage = undefined;
    await this.pool.end();
  }

  private async run<T extends Row>(name: string, text: string, values: unknown[], probe: boolean): Promise<T[]> {
    if (this.outage && !probe) throw this.outage.error;
    const deadline = Date.now() + this.queryTimeoutMs;
    const client = await this.acquire(deadline, probe);
    let failure: Error | undefined;
    try {
      // What is left of the call's deadline after the wait for a connection.
      const rows = (await client.query<T>(this.statement(name, text, values, Math.max(1, deadline - Date.now())))).rows;
      if (probe) this.endOutage();
      return rows;
    } catch (error) {
      failure = error as Error;
      throw this.classify(error);
    } finally {
      // A failed statement's connection is destroyed (as pool.query does): after a timeout its socket may still
      // carry the late answer, or be stalled.
      client.release(failure);
    }
  }

  /**
   * A pooled connection by `deadline`. A caller behind statements that stalled on every pooled connection gets its
   * retryable error at its deadline (or at once when an outage begins meanwhile), not after theirs; a connection
   * that arrives after the caller gave up goes straight back to the pool. The deadline alone is no outage: a busy
   * pool is load, not PostgreSQL gone.
   */
  private acquire(deadline: number, probe: boolean): Promise<PoolClient> {
    return new Promise<PoolClient>((resolve, reject) => {
      let settled = false;
      const fail = (error: StorageException) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.waiting.delete(fail);
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new StorageException(StorageExceptionCode.Unavailable, `Storage unavailable: no database connection within ${this.queryTimeoutMs} ms`)),
        Math.max(0, deadline - Date.now()),
      );
      // The outage probe is the one call that must still try during an outage.
      if (!probe) this.waiting.add(fail);
      this.pool.connect().then(
        (client) => {
          // A checked-out connection that PostgreSQL drops emits 'error' (its statement fails on its own); without
          // a listener that event would end the process.
          if (!this.listened.has(client)) {
            this.listened.add(client);
            client.on('error', (error: Error) => this.logger.debug(`Database connection closed: ${error.message}`));
          }
          if (settled) return client.release();
          settled = true;
          clearTimeout(timer);
          this.waiting.delete(fail);
          resolve(client);
        },
        (error: unknown) => fail(this.classify(error)),
      );
    });
  }

  private async runOn<T extends Row>(client: PoolClient, name: string, text: string, values: unknown[]): Promise<T[]> {
    if (this.outage) throw this.outage.error;
    try {
      return (await client.query<T>(this.statement(name, text, values, this.queryTimeoutMs))).rows;
    } catch (error) {
      throw this.classify(error);
    }
  }

  private statement(name: string, text: string, values: unknown[], timeoutMs: number): QueryConfig {
    // node-postgres reads query_timeout per query too; its typings list it on the client config only.
    const config: QueryConfig & { query_timeout: number } = { name, text, values, query_timeout: timeoutMs };
    return config;
  }

  /** Every driver error becomes a StorageException; one that says PostgreSQL is unreachable starts an outage. */
  private classify(error: unknown): StorageException {
    const storageError = StorageException.from(error);
    if (storageError.unreachable) this.beginOutage(storageError);
    return storageError;
  }

  private beginOutage(error: StorageException): void {
    // After close() every call fails (the pool is gone); that is no outage to probe for.
    if (this.outage || this.closed) return;
    this.logger.warn(`PostgreSQL is unreachable; calls fail at once until it answers again: ${error.message}`);
    const outage = {
      error,
      since: Date.now(),
      probing: false,
      probe: setInterval(() => {
        if (outage.probing) return;
        outage.probing = true;
        // A failed probe is the expected answer during an outage: the outage goes on and the next tick probes again.
        void this.ping().then(
          () => (outage.probing = false),
          () => (outage.probing = false),
        );
      }, OUTAGE_PROBE_INTERVAL_MS),
    };
    outage.probe.unref();
    this.outage = outage;
    // Calls still waiting for a pooled connection would each wait out their deadline for nothing.
    for (const fail of [...this.waiting]) fail(error);
  }

  private endOutage(): void {
    if (!this.outage) return;
    clearInterval(this.outage.probe);
    this.logger.log(`PostgreSQL answers again after ${Date.now() - this.outage.since} ms; calls are served`);
    this.outage = undefined;
  }
}
