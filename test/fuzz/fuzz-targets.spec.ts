import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { machineDescription } from '../faults/support/fault-report';
import { byProfile, faultsProfile } from '../faults/support/faults-profile';
import { TARGETS } from './support/fuzz-corpus';
import { FuzzSummary, runFuzzTarget } from './support/fuzz-process.launcher';

/**
 * Coverage-guided fuzzing of everything that reads bytes from the other side of a socket (see test/fuzz/targets):
 * each target in a process of its own, for a few seconds in `npm test` and for minutes in `npm run test:faults`
 * (which also writes bench/results/fuzz-latest.md). A finding fails the run and is saved under
 * test/fuzz/corpus/<target>/regressions, which fuzz-regressions.spec.ts replays from then on: fix the code, commit
 * the input.
 */

const SECONDS = byProfile({ short: 10, full: 120 });
const REPORT_PATH = path.resolve(__dirname, '..', '..', 'bench', 'results', 'fuzz-latest.md');
const summaries: FuzzSummary[] = [];

jest.setTimeout((SECONDS + 150) * 1000);

describe('coverage-guided fuzzing', () => {
  afterAll(() => {
    if (faultsProfile() !== 'full' || summaries.length === 0) return;
    const rows = summaries.map(
      (s) =>
        `| ${s.target} | ${(s.durationMs / 1000).toFixed(0)} s | ${s.executions.toLocaleString('en-US')} (${s.execsPerSecond.toLocaleString('en-US')}/s) | ${s.seeds} → ${s.corpus} | ${s.coverage.statements} | ${s.coverage.branches} | ${s.coverage.sources.join(', ')} | ${s.findings.length} |`,
    );
    mkdirSync(path.dirname(REPORT_PATH), { recursive: true });
    writeFileSync(
      REPORT_PATH,
      [
        '# Coverage-guided fuzzing, full profile',
        '',
        `Run: ${new Date().toISOString()}, \`npm run test:faults\` (test/fuzz/fuzz-targets.spec.ts, ${SECONDS} s per target).`,
        `Machine: ${machineDescription()}.`,
        '',
        '| target | time | executions | corpus (committed inputs → kept) | statements reached | branch arms reached | sources measured | findings |',
        '|---|---|---|---|---|---|---|---|',
        ...rows,
        '',
      ].join('\n'),
    );
  });

  it.each(Object.keys(TARGETS))('%s: no crash, hang, unhandled rejection or broken answer', async (target) => {
    const outcome = await runFuzzTarget(target, SECONDS);
    if (outcome.summary) {
      summaries.push(outcome.summary);
      const { executions, execsPerSecond, corpus, coverage } = outcome.summary;
      console.log(
        `fuzz ${target}: ${executions} executions (${execsPerSecond}/s), corpus ${corpus}, statements ${coverage.statements}, branches ${coverage.branches}`,
      );
    }
    if (outcome.saved.length > 0) {
      throw new Error(
        `fuzzing ${target} found:\n${outcome.saved.map((finding) => `- ${finding.kind}, saved as ${finding.file}: ${finding.message}`).join('\n')}\n` +
          'Fix the code; the saved input is replayed by test/fuzz/fuzz-regressions.spec.ts once committed.',
      );
    }
    expect(outcome.summary?.executions).toBeGreaterThan(0);
  });
});
