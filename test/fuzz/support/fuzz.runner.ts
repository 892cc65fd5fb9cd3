/*
 * The fuzzing process: `node <this file> <target> <seconds> <seed> <work dir>` (started by fuzz-process.launcher.ts
 * through the test kit's TypeScript program). Instruments the target's sources as they load, fuzzes it, and prints
 * one line `FUZZ-SUMMARY <json>`; exits 0 when nothing was found, 1 otherwise (the finding's input is in the
 * summary, base64).
 */
import * as path from 'node:path';
import { CoverageGuidedFuzzer } from './coverage-guided.fuzzer';
import { corpusOf, TARGETS } from './fuzz-corpus';
import type { FuzzTarget } from './fuzz-target';
import { SourceCoverage } from './source-coverage.instrumenter';

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const MAX_INPUT_BYTES = 8 * 1024;
const EXEC_TIMEOUT_MS = 5_000;

async function main(): Promise<void> {
  const [name, seconds, seed, work] = process.argv.slice(2);
  const entry = TARGETS[name];
  if (!entry) throw new Error(`unknown fuzz target "${name}"; known: ${Object.keys(TARGETS).join(', ')}`);
  // First the hook, then the target: its imports are what gets instrumented.
  const coverage = new SourceCoverage(REPO_ROOT, entry.coverage);
  const target = ((await import(entry.module)) as { target: FuzzTarget }).target;
  const harness = await target.setup();
  const started = Date.now();
  const fuzzer = new CoverageGuidedFuzzer({
    harness,
    coverage,
    seeds: corpusOf(name).map((entry) => entry.input),
    dictionary: target.dictionary,
    durationMs: Number(seconds) * 1000,
    execTimeoutMs: EXEC_TIMEOUT_MS,
    maxInputBytes: MAX_INPUT_BYTES,
    seed: Number(seed),
    currentInputFile: path.join(work, 'current-input'),
  });
  const stats = await fuzzer.run();
  await harness.close();
  const summary = {
    target: name,
    seed: Number(seed),
    executions: stats.executions,
    execsPerSecond: Math.round(stats.executions / (Math.max(1, Date.now() - started) / 1000)),
    corpus: stats.corpus,
    seeds: stats.seeds,
    durationMs: stats.durationMs,
    coverage: { ...coverage.summary(), sources: coverage.instrumented.map((file) => path.relative(REPO_ROOT, file)) },
    findings: stats.findings.map((finding) => ({ kind: finding.kind, message: finding.message, input: finding.input.toString('base64') })),
  };
  process.stdout.write(`FUZZ-SUMMARY ${JSON.stringify(summary)}\n`);
  process.exit(stats.findings.length > 0 ? 1 : 0);
}

main().catch((error: unknown) => {
  process.stderr.write(`fuzz runner failed: ${(error as Error)?.stack ?? String(error)}\n`);
  process.exit(2);
});
