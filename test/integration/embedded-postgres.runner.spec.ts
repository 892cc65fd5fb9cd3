import { ChildProcess, spawn } from 'child_process';
import { existsSync, readFileSync, promises as fs } from 'fs';
import os from 'os';
import path from 'path';
import { Client } from 'pg';
import { EmbeddedPostgresOptions, EmbeddedPostgresRunner } from '@didcomm-mpr/embedded-postgres';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const RUNNER_SOURCE = path.join(REPO_ROOT, 'libs', 'embedded-postgres', 'src', 'embedded-postgres.runner.ts');
const IS_ROOT = process.getuid?.() === 0;
/** initdb plus a start is about a second here; the margin covers slow CI disks. */
const TEST_TIMEOUT_MS = 120_000;

interface LogEntry {
  level: string;
  message: string;
}

let tempDirs: string[] = [];
let runners: EmbeddedPostgresRunner[] = [];
let children: ChildProcess[] = [];
let orphanPids: number[] = [];

afterEach(async () => {
  await Promise.allSettled(runners.map((runner) => runner.stop()));
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  // A failed orphan test may leave a postgres behind that nobody else would ever stop.
  for (const pid of orphanPids) {
    if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  await Promise.all(tempDirs.map((dir) => fs.rm(dir, { recursive: true, force: true })));
  tempDirs = [];
  runners = [];
  children = [];
  orphanPids = [];
});

async function makeTempDir(traversable = true): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'embedded-pg-'));
  tempDirs.push(dir);
  // mkdtemp creates 0700; as root the server runs as an unprivileged user that must traverse it.
  if (traversable) await fs.chmod(dir, 0o755);
  return dir;
}

function createRunner(
  dataDir: string,
  overrides: Partial<EmbeddedPostgresOptions> = {},
): { runner: EmbeddedPostgresRunner; logs: LogEntry[] } {
  const logs: LogEntry[] = [];
  const runner = new EmbeddedPostgresRunner({
    dataDir,
    port: 0,
    database: 'message_pickup',
    log: (level, message) => logs.push({ level, message }),
    ...overrides,
  });
  runners.push(runner);
  return { runner, logs };
}

async function query<T extends Record<string, unknown>>(url: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** A zombie (exited, not yet reaped by init) counts as gone: it holds nothing any more. */
function isAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

function postmasterPid(dataDir: string): number {
  const content = readFileSync(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8');
  return Number.parseInt(content.split('\n')[0], 10);
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return condition();
}

/** Runs a script in a separate Node process that loads the runner through ts-node. */
async function spawnScript(dir: string, body: string): Promise<ChildProcess> {
  const script = path.join(dir, `script-${children.length}.js`);
  await fs.writeFile(script, `const { EmbeddedPostgresRunner } = require(${JSON.stringify(RUNNER_SOURCE)});\n${body}\n`);
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', script], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  return child;
}

function collectOutput(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return { stdout: () => stdout, stderr: () => stderr };
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    const timer = setTimeout(() => reject(new Error(`process ${child.pid} still running after ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

describe('EmbeddedPostgresRunner', () => {
  it(
    'starts a working server whose data and password survive a restart',
    async () => {
      const dataDir = path.join(await makeTempDir(), 'data');
      const { runner } = createRunner(dataDir);

      const firstUrl = await runner.start();
      expect(await query(firstUrl, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      expect(await query(firstUrl, 'SELECT current_database() AS db')).toEqual([{ db: 'message_pickup' }]);
      await query(firstUrl, "CREATE TABLE kept (value text); INSERT INTO kept VALUES ('survives')");
      const password = readFileSync(path.join(dataDir, 'postgres-password'), 'utf8').trim();
      const passwordStat = await fs.stat(path.join(dataDir, 'postgres-password'));
      expect(passwordStat.mode & 0o777).toBe(0o600);
      expect(passwordStat.uid).toBe(process.getuid?.());
      expect(new URL(firstUrl).password).toBe(password);
      await runner.stop();

      const secondUrl = await runner.start();
      expect(await query(secondUrl, 'SELECT value FROM kept')).toEqual([{ value: 'survives' }]);
      expect(readFileSync(path.join(dataDir, 'postgres-password'), 'utf8').trim()).toBe(password);
      expect(new URL(secondUrl).password).toBe(password);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'runs two servers on free ports side by side, apart from the system PostgreSQL',
    async () => {
      const dirA = path.join(await makeTempDir(), 'data');
      const dirB = path.join(await makeTempDir(), 'data');
      const [urlA, urlB] = await Promise.all([createRunner(dirA).runner.start(), createRunner(dirB).runner.start()]);

      const portA = new URL(urlA).port;
      const portB = new URL(urlB).port;
      expect(portA).not.toBe(portB);
      expect([portA, portB]).not.toContain('5432');
      // Each URL reaches its own cluster, not the other one nor a system server.
      expect(await query(urlA, 'SHOW data_directory')).toEqual([{ data_directory: path.join(dirA, 'postgres') }]);
      expect(await query(urlB, 'SHOW data_directory')).toEqual([{ data_directory: path.join(dirB, 'postgres') }]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'refuses a fixed port answered by another server, and creates nothing there',
    async () => {
      const ownerDir = path.join(await makeTempDir(), 'data');
      const ownerUrl = await createRunner(ownerDir).runner.start();
      const takenPort = Number(new URL(ownerUrl).port);

      const intruder = createRunner(path.join(await makeTempDir(), 'data'), { port: takenPort, database: 'intruder' });
      await expect(intruder.runner.start()).rejects.toThrow(/another PostgreSQL server|rejected the password|exited/);
      expect(await query(ownerUrl, "SELECT datname FROM pg_database WHERE datname = 'intruder'")).toEqual([]);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'stops a postgres orphaned by a SIGKILLed process and takes the cluster over',
    async () => {
      const dir = await makeTempDir();
      const dataDir = path.join(dir, 'data');
      const child = await spawnScript(
        dir,
        `const dataDir = ${JSON.stringify(dataDir)};
        new EmbeddedPostgresRunner({ dataDir, port: 0, database: 'orphaned', log: () => {} })
          .start()
          .then((url) => process.stdout.write('URL ' + url + '\\n'), (error) => {
            process.stderr.write(String((error && error.stack) || error));
            process.exit(1);
          });`,
      );
      const output = collectOutput(child);
      const ready = await Promise.race([
        waitUntil(() => output.stdout().includes('\n'), 90_000),
        waitForExit(child, 90_000).then(() => false),
      ]);
      if (!ready) throw new Error(`child runner did not start:\n${output.stderr()}`);
      const orphanUrl = /URL (\S+)/.exec(output.stdout())?.[1] ?? '';
      await query(orphanUrl, "CREATE TABLE before_crash (value text); INSERT INTO before_crash VALUES ('committed')");
      const orphanPid = postmasterPid(dataDir);
      orphanPids.push(orphanPid);

      child.kill('SIGKILL');
      await waitForExit(child, 10_000);
      expect(isAlive(orphanPid)).toBe(true);
      expect(await query(orphanUrl, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);

      const { runner, logs } = createRunner(dataDir, { database: 'orphaned' });
      const url = await runner.start();
      expect(isAlive(orphanPid)).toBe(false);
      expect(await query(url, 'SELECT value FROM before_crash')).toEqual([{ value: 'committed' }]);
      expect(postmasterPid(dataDir)).not.toBe(orphanPid);
      expect(logs.some((entry) => entry.level === 'warn' && /orphan/i.test(entry.message))).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'stop() is idempotent, also before start, and frees the port',
    async () => {
      const dataDir = path.join(await makeTempDir(), 'data');
      const { runner } = createRunner(dataDir);
      await runner.stop();
      await runner.stop();

      const url = await runner.start();
      const pid = postmasterPid(dataDir);
      await Promise.all([runner.stop(), runner.stop()]);
      await runner.stop();

      expect(isAlive(pid)).toBe(false);
      expect(existsSync(path.join(dataDir, 'postgres', 'postmaster.pid'))).toBe(false);
      await expect(query(url, 'SELECT 1')).rejects.toThrow(/ECONNREFUSED/);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'lets the Node process exit on its own after stop()',
    async () => {
      const dir = await makeTempDir();
      const child = await spawnScript(
        dir,
        `const dataDir = ${JSON.stringify(path.join(dir, 'data'))};
        const runner = new EmbeddedPostgresRunner({ dataDir, port: 0, database: 'exits', log: () => {} });
        runner.start().then(() => runner.stop()).then(() => process.stdout.write('stopped\\n'), (error) => {
          process.stderr.write(String((error && error.stack) || error));
          process.exitCode = 1;
        });`,
      );
      const output = collectOutput(child);
      const exit = await waitForExit(child, 90_000);
      expect({ ...exit, stderr: output.stderr() }).toEqual({ code: 0, signal: null, stderr: '' });
      expect(output.stdout()).toBe('stopped\n');
    },
    TEST_TIMEOUT_MS,
  );

  (IS_ROOT ? it : it.skip)(
    'as root, names the directory the server user cannot traverse',
    async () => {
      const privateDir = await makeTempDir(false);
      const { runner } = createRunner(path.join(privateDir, 'data'));
      await expect(runner.start()).rejects.toThrow(new RegExp(`${privateDir}.*not traversable.*DATA_DIR`, 's'));
    },
    TEST_TIMEOUT_MS,
  );
});
