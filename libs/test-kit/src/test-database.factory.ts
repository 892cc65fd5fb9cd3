import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** A database made for one test file or one bench run; `drop` removes it, cutting off connections left over. */
export interface CreatedDatabase {
  name: string;
  url: string;
  drop: () => Promise<void>;
}

/** `url` naming another database of the same server, with the same credentials. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** Runs SQL on a short-lived connection and resolves with the rows (for assertions on stored state, preloading, plans). */
export async function sql<T extends Record<string, unknown> = Record<string, unknown>>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  // Bounded: a PostgreSQL under a fault must fail the caller, not hang it.
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000, statement_timeout: 120_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh, empty database `<prefix>_<random>` on the PostgreSQL server of `serverUrl` (connected to as given). */
export async function createDatabase(serverUrl: string, prefix: string): Promise<CreatedDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await sql(serverUrl, `CREATE DATABASE ${name}`);
  return {
    name,
    url: withDatabase(serverUrl, name),
    // WITH (FORCE): PostgreSQL 13+.
    drop: () => sql(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).then(() => undefined),
  };
}

/** A fresh, empty database on the test PostgreSQL; each test file gets its own, so files can run in parallel. */
export async function createTestDatabase(): Promise<CreatedDatabase> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set: run the tests through jest (its global setup provides one)');
  return createDatabase(withDatabase(url, 'postgres'), 'mpr_test');
}
