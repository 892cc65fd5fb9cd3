import { ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, promises as fs, readFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { findFreePort } from '@didcomm-mpr/embedded-postgres';
import { REPO_ROOT, SERVER_SOURCE_ENTRY } from './repository.paths';
import { typeScriptProgram } from './typescript-source.program';

export interface ServerProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServerProcessOptions {
  /**
   * What runs: 'source' (the default) runs apps/server/src/main.ts through ts-node with each @didcomm-mpr/<lib>
   * from its source, so tests need no build; a path runs that built entry (apps/server/dist/main.js, or another
   * build to compare), as production does.
   */
  entry?: 'source' | string;
  /**
   * Set over the child's environment; an undefined value removes a variable. PORT given here is passed as is
   * (even an invalid one, to test config errors); otherwise the launcher picks a free port.
   */
  env?: Record<string, string | undefined>;
  /**
   * Start from this process's whole environment (the bench: `DATABASE_POOL_SIZE=… npm run bench` must reach the
   * server) instead of a minimal one (tests: jest's and the run's variables must not leak in). The variables that
   * wire the server (database, Redis, port, instance id) are never inherited.
   */
  inheritEnv?: boolean;
  /** Node flags before the program, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  nodeArgs?: string[];
  /** Reserve a V8 inspector port (`--inspect-port`, opened on SIGUSR1), e.g. to force a GC before reading RSS. */
  inspector?: boolean;
  /** The server's embedded PostgreSQL in a fresh temporary DATA_DIR on a free port, removed by `stop()`. */
  freshEmbeddedDatabase?: boolean;
  cwd?: string;
  /** Resolve as soon as the process is spawned, without waiting for /health (for processes expected to fail). */
  waitForHealth?: boolean;
  readyTimeoutMs?: number;
  /** Print the child's output lines as they come, prefixed `[echo]`; otherwise they are kept for failure messages only. */
  echo?: string;
  /**
   * The server speaks TLS (its env sets TLS_CERT_FILE and TLS_KEY_FILE): the URLs are `wss://` and `https://`, and
   * the readiness check trusts `ca` (PEM), e.g. the self-signed certificate itself.
   */
  tls?: { ca: string | Buffer };
}

const READY_TIMEOUT_MS = 60_000;
const OUTPUT_LIMIT_CHARS = 256 * 1024;
/** What the child gets from this process without `inheritEnv`. */
const MINIMAL_ENV = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT'];
/** Where the server listens and what it talks to: given by the launcher or its caller, never inherited. */
const WIRING_ENV = [
  'DATABASE_URL',
  'DATA_DIR',
  'EMBEDDED_POSTGRES_PORT',
  'AUTH_TOKENS',
  'AUTH_TOKENS_FILE',
  'TLS_CERT_FILE',
  'TLS_KEY_FILE',
  'HOST',
  'PORT',
  'REDIS_URL',
  'REDIS_CLUSTER_NODES',
  'REDIS_NAT_MAP',
  'INSTANCE_ID',
  'ENV_FILE',
];
/** Lines node prints about the inspector, not the server's. */
const INSPECTOR_NOISE = [/^Debugger listening on/, /^For help, see/, /^Debugger attached/, /^Debugger ending on/];

/**
 * The real server as a child process on loopback: from the source tree (tests) or from a build (the bench), on a
 * free port, ready once GET /health answers 200. Tests call `ServerProcess.stopAll()` in `afterAll`. `stop()` is
 * bounded: SIGTERM, then SIGKILL, then an embedded PostgreSQL left orphaned is ended through its postmaster.pid.
 */
export class ServerProcess {
  private static readonly started = new Set<ServerProcess>();

  readonly pid: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  private text = '';
  private stderrText = '';
  private exit: ServerProcessExit | undefined;
  private readonly exitPromise: Promise<ServerProcessExit>;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    /** The V8 inspector port when started with `inspector`. */
    readonly inspectorPort: number | undefined,
    private readonly embedded: { dataDir: string; port: number } | undefined,
    private readonly echo: string | undefined,
    /** The CA the readiness check trusts, when the server speaks TLS. */
    private readonly ca: string | Buffer | undefined,
  ) {
    this.pid = child.pid ?? -1;
    this.wsUrl = `${ca === undefined ? 'ws' : 'wss'}://127.0.0.1:${port}`;
    this.httpUrl = `${ca === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
    child.stderr!.on('data', (chunk: Buffer) => (this.stderrText = keepTail(this.stderrText + chunk.toString('utf8'))));
    for (const stream of [child.stdout!, child.stderr!]) {
      stream.on('data', (chunk: Buffer) => this.append(chunk.toString('utf8')));
      if (echo !== undefined) {
        readline.createInterface({ input: stream }).on('line', (line) => {
          if (!INSPECTOR_NOISE.some((pattern) => pattern.test(line))) console.log(`[${echo}] ${line}`);
        });
      }
    }
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve((this.exit = { code, signal })));
      child.once('error', (error) => {
        this.append(`\n[server-process] spawn failed: ${error.message}\n`);
        resolve((this.exit = { code: null, signal: null }));
      });
    });
  }

  static async start(options: ServerProcessOptions = {}): Promise<ServerProcess> {
    const entry = options.entry ?? 'source';
    if (entry !== 'source' && !existsSync(entry)) throw new Error(`${entry} not found: run \`npm run build\` first`);
    const program = entry === 'source' ? typeScriptProgram(SERVER_SOURCE_ENTRY) : { args: [entry], env: {} };
    const port = options.env?.PORT !== undefined ? Number(options.env.PORT) : await findFreePort();
    const inspectorPort = options.inspector ? await findFreePort() : undefined;
    let embedded: { dataDir: string; port: number } | undefined;
    if (options.freshEmbeddedDatabase) {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mpr-server-'));
      // Running as root, the embedded PostgreSQL runs as the `postgres` user: the dir must be traversable.
      chmodSync(dataDir, 0o755);
      embedded = { dataDir, port: await findFreePort() };
    }

    const env: Record<string, string> = {};
    const base = options.inheritEnv ? process.env : Object.fromEntries(MINIMAL_ENV.map((name) => [name, process.env[name]]));
    for (const [name, value] of Object.entries(base)) if (value !== undefined && !WIRING_ENV.includes(name)) env[name] = value;
    Object.assign(env, program.env, {
      // main.ts fills unset variables from ENV_FILE (default ./.env): a developer's .env must not leak in (a
      // DATABASE_URL there would defeat the embedded default or the bench's database, AUTH_TOKENS would refuse us).
      ENV_FILE: path.join(REPO_ROOT, 'libs', 'test-kit', '.env.none-for-server-process'),
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...(embedded ? { DATA_DIR: embedded.dataDir, EMBEDDED_POSTGRES_PORT: String(embedded.port) } : {}),
    });
    for (const [name, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }

    const inspect = inspectorPort === undefined ? [] : [`--inspect-port=127.0.0.1:${inspectorPort}`];
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...inspect, ...program.args], {
      cwd: options.cwd ?? REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const server = new ServerProcess(child, port, inspectorPort, embedded, options.echo, options.tls?.ca);
    ServerProcess.started.add(server);
    if (options.waitForHealth === false) return server;
    try {
      await server.waitHealthy(options.readyTimeoutMs ?? READY_TIMEOUT_MS);
      return server;
    } catch (error) {
      await server.stop(0);
      throw error;
    }
  }

  /** Stops every server process started here and not stopped yet, with SIGKILL (for `afterAll`). */
  static async stopAll(): Promise<void> {
    await Promise.all([...ServerProcess.started].map((server) => server.stop(0)));
  }

  /** Sends a signal to the server process (not to its embedded PostgreSQL, which runs in its own group). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.exit) this.child.kill(signal);
  }

  /** Resolves once the process has exited; with `timeoutMs`, fails with the process output when it takes longer. */
  async waitForExit(timeoutMs?: number): Promise<ServerProcessExit> {
    if (timeoutMs !== undefined && !(await settledWithin(this.exitPromise, timeoutMs))) {
      throw new Error(`The server process (pid ${this.pid}) did not exit within ${timeoutMs} ms. Output:\n${tail(this.output())}`);
    }
    return this.exitPromise;
  }

  exited(): boolean {
    return this.exit !== undefined;
  }

  /** Everything written to stdout and stderr so far (the last 256 KiB). */
  output(): string {
    return this.text;
  }

  /** What was written to stderr alone (the last 256 KiB): a server that logs well writes nothing there. */
  errorOutput(): string {
    return this.stderrText;
  }

  /** The connection URL of the fresh embedded database (for SQL access), once the server runs it. */
  async embeddedDatabaseUrl(): Promise<string | undefined> {
    if (!this.embedded) return undefined;
    const password = (await fs.readFile(path.join(this.embedded.dataDir, 'postgres-password'), 'utf8')).trim();
    return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${this.embedded.port}/message_pickup`;
  }

  /** SIGTERM (graceful), SIGKILL after `graceMs` (at once for 0), then the orphan check and temp-dir removal. */
  async stop(graceMs = 20_000): Promise<void> {
    if (!this.exit && graceMs > 0) {
      this.child.kill('SIGTERM');
      if (!(await settledWithin(this.exitPromise, graceMs))) this.note(`did not exit ${graceMs} ms after SIGTERM: SIGKILL`);
    }
    if (!this.exit) {
      this.child.kill('SIGKILL');
      await settledWithin(this.exitPromise, 5_000);
    }
    await this.stopOrphanedPostgres();
    if (this.embedded) rmSync(this.embedded.dataDir, { recursive: true, force: true });
    ServerProcess.started.delete(this);
  }

  /** Last resort from a process 'exit' handler: synchronous, no waiting. */
  killNow(): void {
    this.kill('SIGKILL');
    const pid = this.postmasterPid();
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      // already gone
    }
  }

  private append(chunk: string): void {
    this.text = keepTail(this.text + chunk);
  }

  private note(message: string): void {
    if (this.echo !== undefined) console.log(`[${this.echo}] ${message}`);
  }

  private async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exit)
        throw new Error(`The server process exited (${describe(this.exit)}) before /health answered 200. Output:\n${tail(this.text)}`);
      try {
        if ((await this.healthStatus()) === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline)
        throw new Error(`The server process did not answer GET /health with 200 within ${timeoutMs} ms. Output:\n${tail(this.text)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** GET /health's status; over HTTPS with the server's CA (fetch takes no CA of its own). */
  private async healthStatus(): Promise<number> {
    if (this.ca === undefined) {
      const response = await fetch(`${this.httpUrl}/health`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      return response.status;
    }
    return new Promise((resolve, reject) => {
      const request = httpsGet(`${this.httpUrl}/health`, { ca: this.ca, timeout: 2_000 }, (response) => {
        response.resume();
        response.once('end', () => resolve(response.statusCode ?? 0));
      });
      request.once('timeout', () => request.destroy(new Error('timed out')));
      request.once('error', reject);
    });
  }

  /** The embedded postmaster's pid if its postmaster.pid names a live process running on our data dir. */
  private postmasterPid(): number | undefined {
    if (!this.embedded) return undefined;
    const clusterDir = path.join(this.embedded.dataDir, 'postgres');
    try {
      const pid = Number(readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (!Number.isInteger(pid) || pid <= 1) return undefined;
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(clusterDir) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** A SIGKILLed server leaves its embedded PostgreSQL running: end it, politely first. */
  private async stopOrphanedPostgres(): Promise<void> {
    const pid = this.postmasterPid();
    if (pid === undefined) return;
    this.note(`embedded PostgreSQL (pid ${pid}) outlived the server: stopping it`);
    for (const [signal, waitMs] of [
      ['SIGINT', 10_000],
      ['SIGQUIT', 5_000],
      ['SIGKILL', 2_000],
    ] as const) {
      try {
        process.kill(pid, signal);
      } catch {
        return;
      }
      const deadline = Date.now() + waitMs;
      while (Date.now() < deadline) {
        if (!existsSync(`/proc/${pid}`)) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}

function keepTail(text: string): string {
  return text.length > OUTPUT_LIMIT_CHARS ? text.slice(-OUTPUT_LIMIT_CHARS) : text;
}

/** The last lines of a process output, for failure messages. */
export function tail(text: string, lines = 40): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n') || '(no output)';
}

function describe(exit: ServerProcessExit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** Whether `promise` settles within `ms` (its timer cleared either way, so nothing is left to keep a process alive). */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
