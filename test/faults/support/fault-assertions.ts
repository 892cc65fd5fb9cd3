import { sql } from '@didcomm-mpr/test-kit';
import { LedgerVerdict } from './delivery-ledger';

/**
 * Fails with what is needed to reproduce a loss or a duplicate: the ids, their stored state (when the
 * database is reachable) and the duplicate timelines.
 */
export async function expectNoLossNoDuplicate(verdict: LedgerVerdict, databaseUrl: string | undefined): Promise<void> {
  const problems: string[] = [];
  if (verdict.lost > 0) {
    const sample = verdict.lostIds.slice(0, 20);
    const stored = databaseUrl
      ? await sql(databaseUrl, 'SELECT id, connection_id, state FROM queued_message WHERE id = ANY($1)', [sample]).then(
          (rows) => JSON.stringify(rows),
          (error: Error) => `(stored state unavailable: ${error.message})`,
        )
      : '(no database to inspect)';
    problems.push(`${verdict.lost} acknowledged messages lost, e.g. ${sample.join(', ')}; stored rows of those: ${stored}`);
  }
  if (verdict.duplicated > 0) problems.push(`${verdict.duplicated} duplicated deliveries:\n  ${verdict.duplicatedDetails.join('\n  ')}`);
  if (verdict.unknown > 0) problems.push(`${verdict.unknown} deliveries of ids no client sent`);
  if (problems.length > 0) throw new Error(`delivery check failed:\n${problems.join('\n')}`);
}
