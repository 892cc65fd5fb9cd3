import { spawn } from 'node:child_process';
import * as path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const SCENARIO = path.join(REPO_ROOT, 'test', 'support', 'credo-scenario.process.ts');
const ALIASES: Record<string, string> = {
  '@didcomm-mpr/client': path.join(REPO_ROOT, 'libs', 'client', 'src', 'index.ts'),
  '@didcomm-mpr/protocol': path.join(REPO_ROOT, 'libs', 'protocol', 'src', 'index.ts'),
};
// Maps the workspace packages to their TypeScript source, as jest's moduleNameMapper does.
const ENTRY = `
const Module = require('module');
const aliases = ${JSON.stringify(ALIASES)};
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) { return resolve.call(this, aliases[request] ?? request, ...rest); };
process.argv.splice(1, 0, 'scenario');
require(${JSON.stringify(SCENARIO)});
`;

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
export function runCredoScenario(mode: 'single' | 'fleet', env: Record<string, string>, timeoutMs: number): Promise<{ lines: CredoScenarioLine[]; output: string; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-r', require.resolve('ts-node/register/transpile-only'), '-e', ENTRY, mode], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TS_NODE_PROJECT: path.join(REPO_ROOT, 'tsconfig.json'), ...env },
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
