import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Every redis-server this process started, killed on exit whatever happens to the test. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

const takenPorts = new Set<number>();
/** A free loopback port below 55535 whose cluster-bus port (+10000) is free too. */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    // Node port and cluster bus port (+10000) both below Linux's ephemeral range (32768 and up): there, the
    // outgoing connections of the other tests can take a port between this check and redis-server's bind.
    const port = 10000 + Math.floor(Math.random() * 12000);
    if (takenPorts.has(port) || takenPorts.has(port + 10000) || takenPorts.has(port - 10000)) continue;
    if ((await portIsFree(port)) && (await portIsFree(port + 10000))) {
      takenPorts.add(port);
      return port;
    }
  }
  throw new Error('no free port pair for redis-server');
}

/** Runs `redis-cli` against the node on 127.0.0.1:port and resolves with its output. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 20_000 });
  return stdout;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One redis-server process on 127.0.0.1:port, with its files in `dir`; can be stopped and started again. */
export class RedisNodeProcess {
  private child: ChildProcess | undefined;

  constructor(
    readonly port: number,
    readonly dir: string,
    private readonly cluster: boolean,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    installExitHook();
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no'];
    if (this.cluster) args.push('--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000');
    const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.resume();
    running.add(child);
    child.once('exit', () => running.delete(child));
    this.child = child;
    await waitFor(`redis-server on ${this.port}`, async () => (await redisCli(this.port, 'ping')).trim() === 'PONG');
  }

  /** Kills the process (SIGKILL: as a crash would) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }
}

export interface RedisSingle {
  url: string;
  node: RedisNodeProcess;
  close(): Promise<void>;
}

/** Starts one non-cluster redis-server on a free loopback port. */
export async function startRedisSingle(): Promise<RedisSingle> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-redis-'));
  const node = new RedisNodeProcess(await freePort(), dir, false);
  await node.start();
  return {
    url: `redis://127.0.0.1:${node.port}`,
    node,
    close: async () => {
      await node.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisClusterProcesses {
  nodes: RedisNodeProcess[];
  /** `host:port,host:port,…` as REDIS_CLUSTER_NODES takes it. */
  seeds: string;
  waitHealthy(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a Redis Cluster of `masters` masters and no replicas on free loopback ports. */
export async function startRedisCluster(masters = 3): Promise<RedisClusterProcesses> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mpr-redis-cluster-'));
  const nodes: RedisNodeProcess[] = [];
  const close = async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const dir = path.join(root, `node-${i}`);
      fs.mkdirSync(dir);
      nodes.push(new RedisNodeProcess(await freePort(), dir, true));
    }
    await Promise.all(nodes.map((node) => node.start()));
    await execFileAsync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((node) => node.address), '--cluster-replicas', '0', '--cluster-yes'],
      {
        timeout: 30_000,
      },
    );
    const waitHealthy = () =>
      waitFor('cluster_state:ok on every node', async () => {
        const infos = await Promise.all(nodes.map((node) => redisCli(node.port, 'cluster', 'info')));
        return infos.every((info) => info.includes('cluster_state:ok'));
      });
    await waitHealthy();
    return { nodes, seeds: nodes.map((node) => node.address).join(','), waitHealthy, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** A Redis a fleet under test runs over: the server environment that reaches it, and its teardown. */
export interface FleetRedis {
  env: Record<string, string>;
  close: () => Promise<void>;
}

/** The two Redis set-ups every fleet test runs over (for `describe.each`): one node, and a 3-master cluster. */
export const REDIS_TOPOLOGIES: ReadonlyArray<readonly [string, () => Promise<FleetRedis>]> = [
  [
    'a single Redis node',
    async () => {
      const redis = await startRedisSingle();
      return { env: { REDIS_URL: redis.url }, close: () => redis.close() };
    },
  ],
  [
    'a 3-master Redis Cluster',
    async () => {
      const cluster = await startRedisCluster(3);
      return { env: { REDIS_CLUSTER_NODES: cluster.seeds }, close: () => cluster.close() };
    },
  ],
];
