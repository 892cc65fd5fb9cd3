import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { createDatabase, CreatedDatabase, JsonRpcWsClient, RedisClusterProcesses, redisCli, ServerProcess, sql, startRedisCluster } from '@didcomm-mpr/test-kit';
import { forEachLimited, nowMs, sleep, withTimeout } from '../async-utils';
import { BENCH_CLIENT, BenchContext } from '../bench-context';
import { BenchServerOptions, startBenchServer } from '../bench-server';
import { holdLiveSessions, OpenLoopResult, releaseLiveSessions, runOpenLoop } from '../live-latency-recorder';
import { formatInt, formatMs } from '../stats';

const execFileAsync = promisify(execFile);

/** The system PostgreSQL tried when BENCH_DATABASE_URL is unset (the embedded one cannot be shared by two servers). */
const SYSTEM_POSTGRES = 'postgres://postgres@127.0.0.1:5432/postgres';

export interface ClusterOptions {
  /** Figure 1: sessions held on A, rate, warm-up and measured duration. */
  connections: number;
  ratePerSecond: number;
  warmupMs: number;
  durationMs: number;
  targetP99Ms: number;
  /** Figure 2: rate steps, each `stepMs` long after `stepWarmupMs`, passing while p99 < `stepP99Ms`. */
  steps: number[];
  stepWarmupMs: number;
  stepMs: number;
  stepP99Ms: number;
  /** Figure 3: sessions re-established after A restarts, with this many addLiveSession calls in flight. */
  restartSessions: number;
  restartConcurrency: number;
}

/**
 * What the cross-instance scenario starts (3 redis-server nodes, two server children, one fresh database), held
 * here so that run.ts can stop all of it from its cleanup, signal handlers and watchdog whatever happened.
 */
export class ClusterRig {
  cluster: RedisClusterProcesses | undefined;
  database: CreatedDatabase | undefined;
  readonly servers = new Set<ServerProcess>();
  private closing: Promise<void> | undefined;

  async startServer(options: BenchServerOptions): Promise<ServerProcess> {
    const server = await startBenchServer(options, 60_000);
    this.servers.add(server);
    return server;
  }

  async stopServer(server: ServerProcess): Promise<void> {
    await server.stop();
    this.servers.delete(server);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all(
        [...this.servers].map((server) => server.stop().catch((error: unknown) => console.error(`[bench] stopping a cluster-run server failed: ${(error as Error).message}`))),
      );
      this.servers.clear();
      if (this.cluster) {
        await withTimeout(this.cluster.close(), 15_000, 'stopping the Redis Cluster').catch((error: unknown) => console.error(`[bench] ${(error as Error).message}`));
        console.log('[bench] Redis Cluster nodes stopped');
      }
      if (this.database) {
        const name = this.database.name;
        await this.database.drop().then(
          () => console.log(`[bench] dropped database ${name}`),
          (error: unknown) => console.error(`[bench] dropping ${name} failed: ${(error as Error).message}`),
        );
      }
    })();
    return this.closing;
  }

  /** From a process 'exit' handler: SIGKILL the servers (the redis nodes are killed by redis-servers.ts's own hook). */
  killNow(): void {
    for (const server of this.servers) server.killNow();
  }
}

type CommandStats = Map<string, number>;

/** `INFO commandstats` of every node, summed per command (the INFO calls themselves left out). */
async function commandStats(cluster: RedisClusterProcesses): Promise<CommandStats> {
  const totals: CommandStats = new Map();
  for (const node of cluster.nodes) {
    for (const line of (await redisCli(node.port, 'INFO', 'commandstats')).split(/\r?\n/)) {
      const match = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
      if (!match || match[1] === 'info') continue;
      totals.set(match[1], (totals.get(match[1]) ?? 0) + Number(match[2]));
    }
  }
  return totals;
}

function diffStats(before: CommandStats, after: CommandStats): [string, number][] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names]
    .map((name) => [name, (after.get(name) ?? 0) - (before.get(name) ?? 0)] as [string, number])
    .filter(([, calls]) => calls > 0)
    .sort((a, b) => b[1] - a[1]);
}

/**
 * One open-loop run: `sender` (on instance B) adds messages to `connectionIds` at `rate`/s, `holder` (on instance A,
 * holding their sessions) is notified and acknowledges with removeMessages. Latency: B's send → A's notification.
 */
function crossRun(
  ctx: BenchContext,
  holder: JsonRpcWsClient,
  sender: JsonRpcWsClient,
  connectionIds: string[],
  tag: string,
  rate: number,
  warmupMs: number,
  durationMs: number,
): Promise<OpenLoopResult> {
  return runOpenLoop(ctx, holder, sender, { connectionIds, ratePerSecond: rate, warmupMs, durationMs, messageId: (i) => `${ctx.runId}-x-${tag}-${i}` });
}

function describe(result: OpenLoopResult, thresholdMs: number): string {
  return (
    `${formatInt(result.notified)} / ${formatInt(result.added)} notified (of ${formatInt(result.expected)} due) over ${result.sendSeconds.toFixed(1)} s, ` +
    `p50 ${formatMs(result.latency.p50)} / p99 ${formatMs(result.latency.p99)} / max ${formatMs(result.latency.max)}; ` +
    `addMessage ack on B p50 ${formatMs(result.addLatency.p50)} / p99 ${formatMs(result.addLatency.p99)}; max schedule lag ${formatMs(result.maxLagMs)}; ` +
    `${result.addErrors} add errors${result.firstAddError ? ` (first: ${result.firstAddError})` : ''}, ${result.duplicates} duplicates, ${result.ackErrors} failed acks; ` +
    `p99 per second: ${result.secondly.map((value) => value.toFixed(1)).join(', ')} ms (threshold ${thresholdMs} ms)`
  );
}

async function pickDatabase(): Promise<{ adminUrl: string; source: string } | undefined> {
  const configured = process.env.BENCH_DATABASE_URL?.trim();
  if (configured) return { adminUrl: configured, source: "BENCH_DATABASE_URL's server" };
  try {
    await withTimeout(sql(SYSTEM_POSTGRES, 'SELECT 1'), 5_000, 'connecting to the system PostgreSQL');
    return { adminUrl: SYSTEM_POSTGRES, source: `the system PostgreSQL (${new URL(SYSTEM_POSTGRES).host})` };
  } catch {
    return undefined;
  }
}

async function healthLiveSessions(server: ServerProcess): Promise<number> {
  const response = await fetch(`${server.httpUrl}/health`, { signal: AbortSignal.timeout(5_000) });
  const body = (await response.json()) as { liveSessions?: number };
  return body.liveSessions ?? Number.NaN;
}

/**
 * Two server instances (A, B) on one database and a 3-master Redis Cluster started from redis-server: cross-instance
 * live-delivery latency at a fixed rate and Redis commands per message over that run, the highest rate whose p99
 * stays under a threshold, and the time to re-establish sessions on A after it restarts.
 */
export async function crossInstance(ctx: BenchContext, options: ClusterOptions, rig: ClusterRig): Promise<void> {
  const database = await pickDatabase();
  if (!database) {
    ctx.report.note(
      `cross-instance figures skipped: the two instances need one shared PostgreSQL (the embedded one cannot be shared), and BENCH_DATABASE_URL is unset and ${SYSTEM_POSTGRES} is not reachable`,
    );
    return;
  }
  try {
    rig.database = await createDatabase(database.adminUrl, 'bench');
    console.log(`[bench] cluster run: created database ${rig.database.name} on ${database.source}`);
    const clusterStarted = nowMs();
    rig.cluster = await withTimeout(startRedisCluster(3), 60_000, 'starting the Redis Cluster');
    const seeds = rig.cluster.seeds;
    console.log(`[bench] cluster run: Redis Cluster of 3 masters at ${seeds} in ${((nowMs() - clusterStarted) / 1000).toFixed(1)} s`);
    const redisVersion = (await execFileAsync('redis-server', ['--version'], { timeout: 5_000 })).stdout.trim().split(' ').find((part) => part.startsWith('v=')) ?? '';

    const optionsOf = (instance: 'A' | 'B', port?: number): BenchServerOptions => ({
      databaseUrl: rig.database?.url,
      label: `server ${instance}`,
      port,
      env: { REDIS_CLUSTER_NODES: seeds, INSTANCE_ID: `bench-${instance.toLowerCase()}-${ctx.runId}` },
    });
    // One after the other: the first runs the migrations on the fresh database.
    let serverA = await rig.startServer(optionsOf('A'));
    const serverB = await rig.startServer(optionsOf('B'));
    ctx.report.note(
      `cross-instance setup: instances A (pid ${serverA.pid}) and B (pid ${serverB.pid}) of the same build, REDIS_CLUSTER_NODES=${seeds} ` +
        `(3 masters, no replicas, redis-server ${redisVersion} on this machine), one fresh database ${rig.database.name} on ${database.source}; ` +
        `holder socket on A, sender socket on B, the bench on the same 2 cores`,
    );

    // Figures 1 and 4: cross-instance latency at the fixed rate, and Redis commands per message over that run.
    const connectionIds = Array.from({ length: options.connections }, (_, k) => `${ctx.runId}-xlive-${k}`);
    const holder = await JsonRpcWsClient.connect(serverA.wsUrl, BENCH_CLIENT);
    const sender = await JsonRpcWsClient.connect(serverB.wsUrl, BENCH_CLIENT);
    try {
      await holdLiveSessions(holder, connectionIds, ' on A');
      await sleep(500);
      const before = await commandStats(rig.cluster);
      const fixed = await crossRun(ctx, holder, sender, connectionIds, 'fixed', options.ratePerSecond, options.warmupMs, options.durationMs);
      const after = await commandStats(rig.cluster);
      const rate = formatInt(options.ratePerSecond);
      ctx.report.add({ name: `Cross-instance live delivery p50 (${rate} msg/s, B → A)`, value: formatMs(fixed.latency.p50) });
      ctx.report.add({
        name: `Cross-instance live delivery p99 (${rate} msg/s, B → A)`,
        value: formatMs(fixed.latency.p99),
        target: `≤ ${options.targetP99Ms} ms`,
        met: fixed.latency.p99 <= options.targetP99Ms && fixed.notified === fixed.added,
      });
      ctx.report.add({ name: 'Cross-instance live delivery max', value: formatMs(fixed.latency.max) });
      ctx.report.add({
        name: 'Cross-instance: notified on A / added on B',
        value: `${formatInt(fixed.notified)} / ${formatInt(fixed.added)}`,
        target: 'all',
        met: fixed.notified === fixed.added && fixed.added === fixed.expected,
      });
      ctx.report.note(`cross-instance at ${rate} msg/s to ${options.connections} connections (after ${options.warmupMs / 1000} s warm-up): ${describe(fixed, options.targetP99Ms)}`);

      const calls = diffStats(before, after);
      const perMessage = (value: number) => (value / fixed.sent).toFixed(2);
      const spublish = calls.find(([name]) => name === 'spublish')?.[1] ?? 0;
      const publish = calls.find(([name]) => name === 'publish')?.[1] ?? 0;
      const totalCalls = calls.reduce((sum, [, value]) => sum + value, 0);
      const publishes = spublish + publish;
      ctx.report.add({
        name: 'Redis publishes per added message (SPUBLISH + PUBLISH, all nodes)',
        value: `${perMessage(publishes)} (${formatInt(spublish)} SPUBLISH + ${formatInt(publish)} PUBLISH / ${formatInt(fixed.sent)} messages)`,
        target: '1',
        met: Math.abs(publishes / fixed.sent - 1) < 0.01,
      });
      ctx.report.add({
        name: 'Redis commands per added message (all commands, all nodes)',
        value: `${perMessage(totalCalls)} (${formatInt(totalCalls)} / ${formatInt(fixed.sent)})`,
        target: '1 (one publish)',
        met: Math.abs(totalCalls / fixed.sent - 1) < 0.01,
      });
      ctx.report.note(
        `Redis commands during the ${rate} msg/s cross-instance run (INFO commandstats summed over the 3 nodes, after − before, INFO itself excluded; ` +
          `${formatInt(fixed.sent)} messages added incl. warm-up, acknowledged by removeMessages on A): ` +
          (calls.length ? calls.map(([name, value]) => `${name} ${formatInt(value)} (${perMessage(value)}/msg)`).join(', ') : 'none'),
      );

      // Figure 2: step the rate; the highest step whose p99 stays under the threshold (and all delivered).
      const stepResults: string[] = [];
      let highestPassing: number | undefined;
      for (const stepRate of options.steps) {
        console.log(`[bench] cluster run: step ${formatInt(stepRate)} msg/s`);
        const result = await crossRun(ctx, holder, sender, connectionIds, `step${stepRate}`, stepRate, options.stepWarmupMs, options.stepMs);
        const passed = result.latency.p99 < options.stepP99Ms && result.notified === result.added && result.added === result.expected && result.addErrors === 0;
        stepResults.push(
          `${formatInt(stepRate)}/s: p99 ${formatMs(result.latency.p99)}, ${formatInt(result.notified)}/${formatInt(result.expected)} ${passed ? 'pass' : 'FAIL'}`,
        );
        ctx.report.note(`cross-instance step ${formatInt(stepRate)} msg/s: ${describe(result, options.stepP99Ms)}`);
        if (!passed) break;
        highestPassing = stepRate;
        await sleep(500);
      }
      ctx.report.add({
        name: `Cross-instance: highest stepped rate with p99 < ${options.stepP99Ms} ms`,
        value: highestPassing === undefined ? `none (lowest step ${formatInt(options.steps[0])} msg/s failed)` : `${formatInt(highestPassing)} msg/s`,
      });
      ctx.report.add({ name: 'Cross-instance rate steps (p99, notified/due)', value: stepResults.join('; ') });
    } finally {
      await releaseLiveSessions(holder, sender, connectionIds);
    }

    // Figure 3: A holds N sessions, restarts (SIGTERM, start again on the same port), and they are re-established.
    const restartIds = Array.from({ length: options.restartSessions }, (_, k) => `${ctx.runId}-restart-${k}`);
    const sessionIds = restartIds.map(() => randomUUID());
    const register = async (client: JsonRpcWsClient): Promise<number> => {
      const started = nowMs();
      await forEachLimited(restartIds.length, options.restartConcurrency, async (k) => {
        const ok = await client.call<boolean>('addLiveSession', { connectionId: restartIds[k], sessionId: sessionIds[k], reclaim: true }, 30_000);
        if (ok !== true) throw new Error(`addLiveSession {reclaim:true} for ${restartIds[k]} returned ${String(ok)}`);
      });
      return nowMs() - started;
    };
    const first = await JsonRpcWsClient.connect(serverA.wsUrl, BENCH_CLIENT);
    let initialMs: number;
    try {
      initialMs = await withTimeout(register(first), 120_000, `registering ${options.restartSessions} sessions on A`);
    } catch (error) {
      first.terminate();
      throw error;
    }
    const heldBefore = await healthLiveSessions(serverA);
    const port = serverA.port;
    const stopStarted = nowMs();
    await rig.stopServer(serverA);
    const stopMs = nowMs() - stopStarted;
    first.terminate();
    const startStarted = nowMs();
    serverA = await rig.startServer(optionsOf('A', port));
    const healthyAt = nowMs();
    const startMs = healthyAt - startStarted;
    const again = await JsonRpcWsClient.connect(serverA.wsUrl, BENCH_CLIENT);
    let reestablishMs: number;
    try {
      await withTimeout(register(again), 120_000, `re-establishing ${options.restartSessions} sessions on A`);
      reestablishMs = nowMs() - healthyAt;
      const heldAfter = await healthLiveSessions(serverA);
      ctx.report.add({
        name: `Re-establish ${formatInt(options.restartSessions)} sessions after an instance restart (A healthy → all addLiveSession {reclaim:true} true)`,
        value: `${(reestablishMs / 1000).toFixed(2)} s (${formatInt((options.restartSessions * 1000) / reestablishMs)} sessions/s)`,
      });
      ctx.report.note(
        `instance restart: ${formatInt(options.restartSessions)} sessions on one socket to A, addLiveSession {reclaim:true} with ${options.restartConcurrency} in flight: ` +
          `first registration ${(initialMs / 1000).toFixed(2)} s (A's /health liveSessions ${formatInt(heldBefore)}); SIGTERM → exit ${(stopMs / 1000).toFixed(2)} s; ` +
          `start → /health OK ${(startMs / 1000).toFixed(2)} s; /health OK → all ${formatInt(options.restartSessions)} answered true ${(reestablishMs / 1000).toFixed(2)} s ` +
          `(includes the WebSocket connect); A's /health liveSessions afterwards ${formatInt(heldAfter)}; same INSTANCE_ID and sessionIds as before the restart`,
      );
    } finally {
      await again.closeQuietly();
    }
  } finally {
    await rig.close();
  }
}
