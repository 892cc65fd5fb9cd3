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
    const client = await this.acquire();
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

  /** One statement on a pooled connection (see `checkout` for the deadline). */
  private run<T extends Row>(name: string, text: string, values: unknown[], probe: boolean): Promise<T[]> {
    if (this.outage && !probe) return Promise.reject(this.outage.error);
    const started = Date.now();
    return new Promise<T[]>((resolve, reject) =>
      this.checkout(probe, reject, (client, release) => {
        // What is left of the call's deadline after the wait for a connection.
        const statement = this.statement(name, text, values, Math.max(1, this.queryTimeoutMs - (Date.now() - started)));
        client.query<T>(statement, (queryError: Error | undefined, result) => {
          // A failed statement's connection is destroyed (as pool.query does): after a timeout its socket may still
          // carry the late answer, or be stalled.
          release(queryError);
          if (queryError) return reject(this.classify(queryError));
          if (probe) this.endOutage();
          resolve(result.rows);
        });
      }),
    );
  }

  /** A pooled connection for `withConnection` (see `checkout`); the caller releases it. */
  private acquire(): Promise<PoolClient> {
    return new Promise<PoolClient>((resolve, reject) => this.checkout(false, reject, (client) => resolve(client)));
  }

  /**
   * Hands a pooled connection to `use`, or fails with `fail` when none came within DATABASE_QUERY_TIMEOUT_MS of the
   * call (its statement then gets what is left of that time): a caller behind statements that stalled on every pooled
   * connection gets its retryable error at its deadline, or at once when an outage begins meanwhile, not after
   * theirs. A connection that arrives after the caller gave up goes straight back to the pool. The deadline of a wait
   * alone is no outage: a busy pool is load, not PostgreSQL gone. Callbacks rather than promises between the pool and
   * the statement, as pool.query does: a released connection passes to the next waiter at once, which matters when
   * thousands of calls queue for ten connections (measured: twice the time for 5,000 session registrations).
   */
  private checkout(
    probe: boolean,
    fail: (error: StorageException) => void,
    use: (client: PoolClient, release: (error?: Error) => void) => void,
  ): void {
    let waiting = true;
    const giveUp = (error: StorageException) => {
      if (!waiting) return;
      waiting = false;
      clearTimeout(timer);
      this.waiting.delete(giveUp);
      fail(error);
    };
    const timer = setTimeout(
      () =>
        giveUp(
          new StorageException(
            StorageExceptionCode.Unavailable,
            `Storage unavailable: no database connection within ${this.queryTimeoutMs} ms`,
          ),
        ),
      this.queryTimeoutMs,
    );
    // The outage probe is the one call that must still try during an outage.
    if (!probe) this.waiting.add(giveUp);
    this.pool.connect((connectError, client, release) => {
      if (connectError || !client) return giveUp(this.classify(connectError));
      if (!waiting) return release();
      waiting = false;
      clearTimeout(timer);
      this.waiting.delete(giveUp);
      this.listen(client);
      use(client, release);
    });
  }

  /**
   * A checked-out connection that PostgreSQL drops emits 'error' (its statement fails on its own); without a listener
   * that event would end the process. One listener per connection, for its whole life.
   */
  private listen(client: PoolClient): void {
    if (this.listened.has(client)) return;
    this.listened.add(client);
    client.on('error', (error: Error) => this.logger.debug(`Database connection closed: ${error.message}`));
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
