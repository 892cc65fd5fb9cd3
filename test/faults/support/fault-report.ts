import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LedgerVerdict } from './delivery-ledger';
import { faultsProfile } from './faults-profile';
import { ErrorTally } from './load-generator';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
export const FULL_REPORT_PATH = path.join(REPO_ROOT, 'bench', 'results', 'faults-latest.md');

export interface FaultRow {
  /** 1..6, the order of issue 6's list. */
  fault: number;
  name: string;
  acknowledged: number;
  lost: number;
  duplicated: number;
  redelivered: number;
  /** Errors seen by the legitimate clients, by code. */
  errors: string;
  /** Time until normal service after the fault ended, with what was measured. */
  normalService: string;
  notes: string;
}

export function rowFromVerdict(
  fault: number,
  name: string,
  verdict: LedgerVerdict,
  errors: ErrorTally,
  normalService: string,
  notes: string,
): FaultRow {
  return {
    fault,
    name,
    acknowledged: verdict.acknowledged,
    lost: verdict.lost,
    duplicated: verdict.duplicated,
    redelivered: verdict.redelivered,
    errors: errors.describe(),
    normalService,
    notes:
      `delivered live ${verdict.deliveredLive}, taken during run ${verdict.takenDuringRun}, takeable at end ${verdict.takeableAtEnd}` +
      (verdict.refused > 0 ? `, refused adds ${verdict.refused}` : '') +
      (notes ? `; ${notes}` : ''),
  };
}

const fmt = (n: number) => n.toLocaleString('en-US');

export function markdownTable(rows: FaultRow[]): string {
  const lines = [
    '| # | fault | acknowledged | lost | duplicated | redelivered | errors seen by clients (answers and transport failures, by code; retries included) | normal service after | notes |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of [...rows].sort((a, b) => a.fault - b.fault)) {
    lines.push(
      `| ${row.fault} | ${row.name} | ${fmt(row.acknowledged)} | ${fmt(row.lost)} | ${fmt(row.duplicated)} | ${fmt(row.redelivered)} | ${row.errors} | ${row.normalService} | ${row.notes} |`,
    );
  }
  return lines.join('\n');
}

export function machineDescription(): string {
  const cpu = (() => {
    try {
      return execFileSync('lscpu', { encoding: 'utf8' })
        .split('\n')
        .filter((line) => /^(Model name|CPU\(s\)|Thread|Core|Socket)/.test(line))
        .map((line) => line.replace(/\s+/g, ' ').trim())
        .join('; ');
    } catch (error) {
      return `lscpu unavailable (${(error as Error).message})`;
    }
  })();
  return `${os.cpus().length} CPUs (nproc ${os.availableParallelism()}), ${cpu}; ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM; Node ${process.version}; ${os.type()} ${os.release()}`;
}

/**
 * Prints the fault's row; in the full profile also adds it to the rows of this jest run (kept in a temporary
 * file named after the jest process, since each spec file has its own module registry) and rewrites
 * bench/results/faults-latest.md with all rows so far.
 */
export function reportFault(row: FaultRow): void {
  const profile = faultsProfile();
  console.log(`fault ${row.fault} (${profile} profile):\n${markdownTable([row])}`);
  if (profile !== 'full') return;
  const rowsFile = path.join(os.tmpdir(), `mpr-faults-rows-${process.pid}.json`);
  const rows: FaultRow[] = existsSync(rowsFile) ? (JSON.parse(readFileSync(rowsFile, 'utf8')) as FaultRow[]) : [];
  const merged = [...rows.filter((existing) => existing.fault !== row.fault), row];
  writeFileSync(rowsFile, JSON.stringify(merged));
  mkdirSync(path.dirname(FULL_REPORT_PATH), { recursive: true });
  const text = [
    '# Fault-injection suite, full profile',
    '',
    `Run: ${new Date().toISOString()}, \`npm run test:faults\` (FAULTS_PROFILE=full jest test/faults test/fuzz --runInBand).`,
    `Machine: ${machineDescription()}.`,
    'Servers, PostgreSQL, Redis and the load generator share these cores (and other work on the machine).',
    '',
    markdownTable(merged),
    '',
    'lost: acknowledged by addMessage, never notified nor taken, and not takeable at the end. duplicated: delivered again after',
    'removeMessages had been answered (unless the client re-sent the add then or later), or twice with no redelivery cause in',
    'between. redelivered: delivered again before removal',
    'after a legitimate cause (crash, session re-registration, socket end, redelivery timeout). See test/faults/support/delivery-ledger.ts.',
    '',
  ].join('\n');
  writeFileSync(FULL_REPORT_PATH, text);
  console.log(`full table so far (${FULL_REPORT_PATH}):\n${markdownTable(merged)}`);
}

/** "1.23 s" from milliseconds, or "never" when the event did not happen. */
export function seconds(ms: number | undefined): string {
  return ms === undefined ? 'never' : `${(ms / 1000).toFixed(2)} s`;
}
