import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { findFreePort } from '@didcomm-mpr/embedded-postgres';

/** The repository root (this file is test/support/server-process.ts). */
const REPO_ROOT = path.resolve(__dirname, '..', '..');
const MAIN = path.join(REPO_ROOT, 'apps', 'server', 'src', 'main.ts');
const LIBS = path.join(REPO_ROOT, 'libs');
const READY_TIMEOUT_MS = 60_000;
const OUTPUT_LIMIT_CHARS = 256 * 1024;

/**
 * The child's program, passed with `-e` after ts-node's hook: it maps each `@didcomm-mpr/<lib>` to that
 * library's TypeScript source (as jest's moduleNameMapper does for in-process tests), so the child runs the
 * current source on a clean checkout, without a built (or stale) libs/<lib>/dist, then runs main.ts.
 */
const ENTRY = `
const Module = require('module');
const path = require('path');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const lib = /^@didcomm-mpr\\/([a-z-]+)$/.exec(request);
  return resolve.call(this, lib ? path.join(${JSON.stringify(LIBS)}, lib[1], 'src', 'index.ts') : request, ...rest);
};
require(${JSON.stringify(MAIN)});
`;

export interface ServerProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcess {
  pid: number;
  port: number;
  wsUrl: string;
  httpUrl: string;
  child: ChildProcess;
  /** Sends a signal to the server process (not to its embedded PostgreSQL, which runs in its own group). */
  kill: (signal?: NodeJS.Signals) => void;
  /** Resolves once the process has exited (at once if it already has). */
  waitForExit: () => Promise<ServerProcessExit>;
  /** Whether the process has exited. */
  exited: () => boolean;
  /** Everything written to stdout and stderr so far (the last 256 KiB). */
  output: () => string;
}

export interface StartServerProcessOptions {
  /** Added to a minimal environment (PATH, HOME...); PORT and HOST are set by the helper unless given. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Resolve as soon as the process is spawned, without waiting for /health (for processes expected to fail). */
  waitForHealth?: boolean;
  readyTimeoutMs?: number;
}

const started = new Set<ServerProcess>();

export { findFreePort };

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  // Not the whole environment: jest's and the run's variables (DATABASE_URL, TEST_*, NODE_OPTIONS...) must not leak in.
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT']) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the real server entry point (apps/server/src/main.ts) as a child process through ts-node, on a free
 * port, and waits until GET /health answers 200. Tests must call `stopAllServerProcesses()` in `afterAll`.
 */
export async function startServerProcess(options: StartServerProcessOptions = {}): Promise<ServerProcess> {
  // A PORT given by the test (possibly invalid, to test config errors) is passed through as is.
  const port = options.env?.PORT !== undefined ? Number(options.env.PORT) : await findFreePort();
  const env: Record<string, string> = {
    ...baseEnv(),
    TS_NODE_PROJECT: path.join(REPO_ROOT, 'tsconfig.json'),
    // main.ts fills unset variables from ENV_FILE (default ./.env): a developer's .env must not leak in
    // (a DATABASE_URL there would defeat the embedded default, AUTH_TOKENS would refuse our clients).
    ENV_FILE: path.join(REPO_ROOT, 'test', 'support', '.env.none-for-server-process'),
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
  };
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  // Resolved here, so the child finds ts-node whatever its working directory.
  const child = spawn(process.execPath, ['-r', require.resolve('ts-node/register/transpile-only'), '-e', ENTRY], {
    cwd: options.cwd ?? REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const append = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > OUTPUT_LIMIT_CHARS) output = output.slice(-OUTPUT_LIMIT_CHARS);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  let exit: ServerProcessExit | undefined;
  const exitPromise = new Promise<ServerProcessExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
    child.once('error', (error) => {
      append(Buffer.from(`\n[server-process] spawn failed: ${error.message}\n`));
      exit = { code: null, signal: null };
      resolve(exit);
    });
  });

  const host = `127.0.0.1:${port}`;
  const server: ServerProcess = {
    pid: child.pid ?? -1,
    port,
    wsUrl: `ws://${host}`,
    httpUrl: `http://${host}`,
    child,
    kill: (signal = 'SIGTERM') => {
      if (!exit) child.kill(signal);
    },
    waitForExit: () => exitPromise,
    exited: () => exit !== undefined,
    output: () => output,
  };
  started.add(server);
  void exitPromise.then(() => started.delete(server));

  if (options.waitForHealth === false) return server;
  const timeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (exit) throw new Error(`The server process exited (${describe(exit)}) before /health answered 200. Output:\n${tail(output)}`);
    try {
      const response = await fetch(`${server.httpUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exitPromise;
      throw new Error(`The server process did not answer GET /health with 200 within ${timeoutMs} ms. Output:\n${tail(output)}`);
    }
    await sleep(100);
  }
}

/** Waits for the exit, failing with the process output when it takes longer than `timeoutMs`. */
export async function waitForExit(server: ServerProcess, timeoutMs: number): Promise<ServerProcessExit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`The server process (pid ${server.pid}) did not exit within ${timeoutMs} ms. Output:\n${tail(server.output())}`)), timeoutMs);
  });
  try {
    return await Promise.race([server.waitForExit(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILLs every server process started by this helper that is still running (for `afterAll`). */
export async function stopAllServerProcesses(): Promise<void> {
  const running = [...started];
  for (const server of running) server.kill('SIGKILL');
  await Promise.all(running.map((server) => server.waitForExit()));
}

/** The last lines of a process output, for failure messages. */
export function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n') || '(no output)';
}

function describe(exit: ServerProcessExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}
