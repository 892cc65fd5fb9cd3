import { sql } from '@didcomm-mpr/test-kit';
import { BacklogSpec } from '../backlog';
import { ClosedLoopResult, DrainResult, OpenLoopResult, ScheduleOptions } from '../load-loops';

export type ContenderName = 'raw' | 'peer' | 'server';

/** The order each round measures them in. */
export const CONTENDER_ORDER: readonly ContenderName[] = ['raw', 'peer', 'server'];

export interface LoadResult {
  rows: number;
  seconds: number;
  rate: number;
  /** How the rows arrived (e.g. "addMessage, 32 in flight"). */
  how: string;
}

/** What the statistics collector says about the contender's queue table. */
export interface TableState {
  liveRows: number;
  deadRows: number;
  /** ANALYZE runs so far, manual + autovacuum's. */
  analyzeCount: number;
  autoanalyzeCount: number;
}

/**
 * One of the three things the bench puts side by side on the same PostgreSQL server, the same payloads and the same
 * connection ids: raw PostgreSQL (the limit), the in-process peer library, and this server. Every figure of the
 * three-way table is one of these calls, measured the same way for each (load-loops.ts).
 */
export interface Contender {
  readonly name: ContenderName;
  /** One line for the report: what runs and where its data lives. */
  readonly description: string;
  /** The process whose CPU a phase's CPU line reports (the server child, the peer child; raw: the bench itself). */
  readonly pid: number | undefined;
  /** The database and table its messages live in, for the table-state readings. */
  readonly databaseUrl: string;
  readonly table: string;
  /** Removes every message and analyses the empty table, so the next figure starts on a table whose statistics say so. */
  empty(): Promise<void>;
  vacuum(analyze: boolean): Promise<void>;
  /** Closed-loop single adds (raw: single-row autocommit INSERTs), message i of caller c to connectionIds[(c + i) % n]. */
  add(callers: number, connectionIds: string[], warmupMs: number, measureMs: number): Promise<ClosedLoopResult>;
  /** The backlog arrives through the contender's add path (raw: 100-row INSERTs); no ANALYZE. */
  load(spec: BacklogSpec): Promise<LoadResult>;
  /**
   * The same backlog in the same arrival order as `load`, written straight into the table by SQL in the contender's
   * own row format: for a figure that does not measure how it arrived (raw: its 100-row INSERTs); no ANALYZE.
   */
  seed(spec: BacklogSpec): Promise<LoadResult>;
  /** Removes whatever the connection still holds (what a drain stopped by its time bound left). */
  removeConnection(connectionId: string): Promise<void>;
  /** Take 100 and remove them, until the connection's queue is empty or `maxMs` has passed (raw: DELETE … RETURNING 100). */
  drain(connectionId: string, expected: number, maxMs: number): Promise<DrainResult>;
  /** Live delivery to held sessions, the holder acknowledging; undefined where the contender has no live mode (raw). */
  live?(connectionIds: string[], schedule: ScheduleOptions): Promise<OpenLoopResult>;
  close(): Promise<void>;
}

/** Rows a seeding statement writes: a few tens of MB of payload each. */
export const SEED_CHUNK = 20_000;

/** The statistics collector's view of `table` (counts are as of its last report, a few hundred ms behind). */
export async function tableState(databaseUrl: string, table: string): Promise<TableState> {
  const rows = await sql<{ live: string; dead: string; analyzes: string; autoanalyzes: string }>(
    databaseUrl,
    `SELECT n_live_tup AS live, n_dead_tup AS dead, analyze_count + autoanalyze_count AS analyzes, autoanalyze_count AS autoanalyzes
     FROM pg_stat_user_tables WHERE relname = $1`,
    [table],
  );
  const row = rows[0];
  return {
    liveRows: Number(row?.live ?? Number.NaN),
    deadRows: Number(row?.dead ?? Number.NaN),
    analyzeCount: Number(row?.analyzes ?? Number.NaN),
    autoanalyzeCount: Number(row?.autoanalyzes ?? Number.NaN),
  };
}
