import { Logger } from '@nestjs/common';
import { Pool, PoolClient, QueryConfig } from 'pg';
import { Semaphore } from './concurrency.semaphore';
import { StorageException } from './storage.exception';

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
 * - every statement has a DATABASE_QUERY_TIMEOUT_MS deadline; a timed-out statement's connection is destroyed, so a
 *   stalled socket is never reused;
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
  private closed = false;

  constructor(options: DatabaseExecutorOptions) {
    this.queryTimeoutMs = options.queryTimeoutMs;
    this.pool = new Pool({
      connectionString: options.url,
      max: options.poolSize,
      application_name: options.applicationName ?? 'message-pickup-repository',
      // Fail a call fast when PostgreSQL is gone instead of letting it hang until the client times out.
      connectionTimeoutMillis: 5_000,
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
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.classify(error);
    }
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
    try {
      // A timed-out query rejects and pool.query destroys its connection, so a stalled socket is never reused.
      const rows = (await this.pool.query<T>(this.statement(name, text, values))).rows;
      if (probe) this.endOutage();
      return rows;
    } catch (error) {
      throw this.classify(error);
    }
  }

  private async runOn<T extends Row>(client: PoolClient, name: string, text: string, values: unknown[]): Promise<T[]> {
    if (this.outage) throw this.outage.error;
    try {
      return (await client.query<T>(this.statement(name, text, values))).rows;
    } catch (error) {
      throw this.classify(error);
    }
  }

  private statement(name: string, text: string, values: unknown[]): QueryConfig {
    // node-postgres reads query_timeout per query too; its typings list it on the client config only.
    const config: QueryConfig & { query_timeout: number } = { name, text, values, query_timeout: this.queryTimeoutMs };
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
  }

  private endOutage(): void {
    if (!this.outage) return;
    clearInterval(this.outage.probe);
    this.logger.log(`PostgreSQL answers again after ${Date.now() - this.outage.since} ms; calls are served`);
    this.outage = undefined;
  }
}
