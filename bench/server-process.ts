import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync, mkdtempSync, chmodSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { sleep } from './async-utils';
import { findFreePort } from '@didcomm-mpr/embedded-postgres';

/** The build under test; BENCH_SERVER_ENTRY points at another build (e.g. a patched copy to compare). */
export const SERVER_ENTRY = path.resolve(process.env.BENCH_SERVER_ENTRY ?? path.join(__dirname, '..', 'apps', 'server', 'dist', 'main.js'));

export interface ServerStartOptions {
  /** External PostgreSQL (a fresh database); when undefined the server runs its embedded PostgreSQL. */
  databaseUrl?: string;
  logLevel?: string;
  /** Extra environment for the child (e.g. REDIS_CLUSTER_NODES, INSTANCE_ID). */
  env?: Record<string, string>;
  /** Listen on this port instead of a free one (to restart an instance where its clients expect it). */
  port?: number;
  /** Prefix of the child's log lines, e.g. "server A" (default "server"). */
  label?: string;
}

/** Lines the child prints that are not the server's (the inspector opening for a forced GC). */
const NOISE = [/^Debugger listening on/, /^For help, see/, /^Debugger attached/, /^Debugger ending on/];

/**
 * The server under test, as a child process from the build output: on a free port, with LOG_LEVEL=warn, on a
 * fresh database (a new embedded cluster in a temp DATA_DIR, or the given URL). Stopping it is bounded: SIGTERM,
 * then SIGKILL, then an orphaned embedded PostgreSQL is ended through its postmaster.pid and the temp dir removed.
 */
export class ServerProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private exitInfo: string | undefined;
  readonly dataDir: string | undefined;
  private embeddedPostgresPort = 0;

  private constructor(
    readonly port: number,
    readonly inspectorPort: number,
    private readonly options: ServerStartOptions,
  ) {
    if (!options.databaseUrl) {
      // Running as root, the embedded PostgreSQL runs as the `postgres` user: the dir must be traversable.
      this.dataDir = mkdtempSync(path.join(os.tmpdir(), 'mpr-bench-'));
      chmodSync(this.dataDir, 0o755);
    }
  }

  static async start(options: ServerStartOptions, healthTimeoutMs = 120_000): Promise<ServerProcess> {
    if (!existsSync(SERVER_ENTRY)) throw new Error(`${SERVER_ENTRY} not found: run \`npm run build\` first`);
    const server = new ServerProcess(options.port ?? (await findFreePort()), await findFreePort(), options);
    try {
      if (!options.databaseUrl) server.embeddedPostgresPort = await findFreePort();
      server.spawn();
      await server.waitHealthy(healthTimeoutMs);
      return server;
    } catch (error) {
      await server.stop();
      throw error;
    }
  }

  get pid(): number {
    if (!this.child?.pid) throw new Error('server not running');
    return this.child.pid;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/`;
  }

  get httpBase(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.exitInfo === undefined;
  }

  /** The connection URL of the embedded cluster (for version queries and SQL preloading), once it runs. */
  async embeddedDatabaseUrl(): Promise<string | undefined> {
    if (!this.dataDir) return undefined;
    const password = (await fs.readFile(path.join(this.dataDir, 'postgres-password'), 'utf8')).trim();
    return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${this.embeddedPostgresPort}/message_pickup`;
  }

  private spawn(): void {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of ['DATABASE_URL', 'DATA_DIR', 'AUTH_TOKENS', 'EMBEDDED_POSTGRES_PORT', 'HOST', 'PORT', 'REDIS_URL', 'REDIS_CLUSTER_NODES', 'REDIS_NAT_MAP', 'INSTANCE_ID'])
      delete env[name];
    Object.assign(env, {
      PORT: String(this.port),
      HOST: '127.0.0.1',
      LOG_LEVEL: this.options.logLevel ?? 'warn',
      // The drain scenario queues a backlog far beyond the default per-connection quota; the quota check itself
      // still runs on every add.
      MAX_QUEUE_MESSAGES: '1000000000',
      MAX_QUEUE_BYTES: String(Number.MAX_SAFE_INTEGER),
      // The expiry scenario preloads expired messages and measures live delivery while the sweeper deletes them.
      EXPIRY_SWEEP_INTERVAL_MS: '1000',
      ...(this.options.databaseUrl
        ? { DATABASE_URL: this.options.databaseUrl }
        : { DATA_DIR: this.dataDir, EMBEDDED_POSTGRES_PORT: String(this.embeddedPostgresPort) }),
      ...this.options.env,
    });
    // BENCH_SERVER_NODE_ARGS: extra node flags for the server, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const extraArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
    const child = spawn(process.execPath, [...extraArgs, `--inspect-port=127.0.0.1:${this.inspectorPort}`, SERVER_ENTRY], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      readline.createInterface({ input: stream }).on('line', (line) => {
        if (!NOISE.some((pattern) => pattern.test(line))) console.log(`[${this.options.label ?? 'server'}] ${line}`);
      });
    }
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = signal ? `signal ${signal}` : `code ${code}`;
        resolve();
      });
      child.once('error', (error) => {
        this.exitInfo = `spawn error ${error.message}`;
        resolve();
      });
    });
  }

  private async waitHealthy(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitInfo) throw new Error(`server exited during startup (${this.exitInfo})`);
      try {
        const response = await fetch(`${this.httpBase}/health`, { signal: AbortSignal.timeout(2_000) });
        if (response.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`server not healthy within ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  /** SIGTERM (graceful), SIGKILL after `graceMs`, then the orphan check and temp-dir removal. */
  async stop(graceMs = 20_000): Promise<void> {
    const child = this.child;
    if (child && this.exitInfo === undefined) {
      child.kill('SIGTERM');
      const graceful = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
      if (!graceful) {
        console.log(`[bench] server did not exit ${graceMs} ms after SIGTERM: SIGKILL`);
        child.kill('SIGKILL');
        await Promise.race([this.exited, sleep(5_000)]);
      }
    }
    await this.stopOrphanedPostgres();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Last resort from a process 'exit' handler: synchronous, no waiting. */
  killNow(): void {
    if (this.child && this.exitInfo === undefined) this.child.kill('SIGKILL');
    const pid = this.postmasterPid();
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
  }

  /** The embedded postmaster's pid if its postmaster.pid names a live process running on our data dir. */
  private postmasterPid(): number | undefined {
    if (!this.dataDir) return undefined;
    const clusterDir = path.join(this.dataDir, 'postgres');
    try {
      const pid = Number(readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (!Number.isInteger(pid) || pid <= 1) return undefined;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return cmdline.includes(clusterDir) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private async stopOrphanedPostgres(): Promise<void> {
    const pid = this.postmasterPid();
    if (pid === undefined) return;
    console.log(`[bench] embedded PostgreSQL (pid ${pid}) outlived the server: stopping it`);
    for (const [signal, waitMs] of [['SIGINT', 10_000], ['SIGQUIT', 5_000], ['SIGKILL', 2_000]] as const) {
      try {
        process.kill(pid, signal);
      } catch {
        return;
      }
      const deadline = Date.now() + waitMs;
      while (Date.now() < deadline) {
        if (!existsSync(`/proc/${pid}`)) return;
        await sleep(100);
      }
    }
  }
}
