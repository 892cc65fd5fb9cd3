import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT, typeScriptProgram } from '@didcomm-mpr/test-kit';

const SCENARIO = path.join(REPO_ROOT, 'test', 'support', 'credo-scenario.process.ts');

/** One line the scenario printed. */
export interface CredoScenarioLine {
  step?: string;
  error?: string;
  [key: string]: unknown;
}

/**
 * Runs test/support/credo-scenario.process.ts in a plain Node child (ts-node, transpile only): the Credo 0.6
 * packages pull in ES-module-only dependencies that CommonJS jest cannot load, and Node ≥ 20.19 can
 * `require` them. Resolves with the parsed step lines and the whole output (for failure messages).
 */
export function runCredoScenario(
  mode: 'single' | 'fleet',
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ lines: CredoScenarioLine[]; output: string; code: number | null }> {
  return new Promise((resolve) => {
    const program = typeScriptProgram(SCENARIO, [mode]);
    const child = spawn(process.execPath, program.args, {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...program.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const lines = output
        .split('\n')
        .filter((line) => line.startsWith('{"step"') || line.startsWith('{"error"'))
        .map((line) => JSON.parse(line) as CredoScenarioLine);
      resolve({ lines, output, code });
    });
  });
}
