import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { typeScriptProgram } from '@didcomm-mpr/test-kit';
import { saveRegression } from './fuzz-corpus';

export interface FuzzSummary {
  target: string;
  seed: number;
  executions: number;
  execsPerSecond: number;
  corpus: number;
  seeds: number;
  durationMs: number;
  coverage: { statements: string; branches: string; files: number; sources: string[] };
  findings: { kind: string; message: string; input: string }[];
}

export interface FuzzOutcome {
  summary: FuzzSummary | undefined;
  /** Findings saved as regression inputs (repository-relative paths), with what went wrong. */
  saved: { file: string; kind: string; message: string }[];
  output: string;
}

/** Room for the fuzzing process to start (ts-node compiles the target's imports) and stop, beyond its time budget. */
const START_AND_STOP_MS = 90_000;

/**
 * Runs one target in a fuzzing process of its own (instrumentation needs a plain Node module loader, not jest's) for
 * `seconds`. A finding, or a process that crashes, hangs past its budget or exits without a summary (the input it
 * was running is in its work directory), is saved under test/fuzz/corpus/<target>/regressions, where the regression
 * suite replays it from then on.
 */
export async function runFuzzTarget(target: string, seconds: number, seed = Date.now() % 2 ** 31): Promise<FuzzOutcome> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `mpr-fuzz-${target}-`));
  const { args, env } = typeScriptProgram(path.join(__dirname, 'fuzz.runner.ts'), [target, String(seconds), String(seed), work]);
  const child = spawn(process.execPath, ['--max-old-space-size=1024', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), seconds * 1000 + START_AND_STOP_MS);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  clearTimeout(killer);
  const line = output.split('\n').find((candidate) => candidate.startsWith('FUZZ-SUMMARY '));
  const summary = line ? (JSON.parse(line.slice('FUZZ-SUMMARY '.length)) as FuzzSummary) : undefined;
  const saved: FuzzOutcome['saved'] = [];
  const save = (input: Buffer, kind: string, message: string) =>
    saved.push({ file: saveRegression(target, input, createHash('sha256').update(input).digest('hex')), kind, message });
  for (const finding of summary?.findings ?? []) save(Buffer.from(finding.input, 'base64'), finding.kind, finding.message);
  if (!summary) {
    const current = path.join(work, 'current-input');
    const why = exit.signal
      ? `killed by ${exit.signal} (a hang past the budget, or memory)`
      : `exited with code ${exit.code} without a summary`;
    if (fs.existsSync(current) && exit.code !== 2) save(fs.readFileSync(current), 'process', why);
    else saved.push({ file: '(none)', kind: 'process', message: `${why}\n${output.slice(-4000)}` });
  }
  fs.rmSync(work, { recursive: true, force: true });
  return { summary, saved, output };
}
