import * as path from 'node:path';
import { REPO_ROOT } from './repository.paths';

const LIBS = path.join(REPO_ROOT, 'libs');

/**
 * How to run a TypeScript file of this repository in a plain Node child: `node <args>` with `env` added to the
 * child's environment. ts-node compiles it (transpile only), and each `@didcomm-mpr/<lib>` is resolved to that
 * library's TypeScript source (as jest's moduleNameMapper does for in-process tests), so the child runs the
 * current source on a clean checkout, without a built (or stale) libs/<lib>/dist. The child sees
 * `process.argv` as `node <file> ...argv`.
 */
export function typeScriptProgram(file: string, argv: string[] = []): { args: string[]; env: Record<string, string> } {
  const program = `
const Module = require('module');
const path = require('path');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const lib = /^@didcomm-mpr\\/([a-z-]+)$/.exec(request);
  return resolve.call(this, lib ? path.join(${JSON.stringify(LIBS)}, lib[1], 'src', 'index.ts') : request, ...rest);
};
process.argv.splice(1, 0, ${JSON.stringify(file)});
require(${JSON.stringify(file)});
`;
  return {
    // Resolved here, so the child finds ts-node whatever its working directory.
    args: ['-r', require.resolve('ts-node/register/transpile-only'), '-e', program, ...argv],
    env: { TS_NODE_PROJECT: path.join(REPO_ROOT, 'tsconfig.json') },
  };
}
