import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import {
  createDatabase,
  CreatedDatabase,
  JsonRpcWsClient,
  RedisClusterProcesses,
  redisCli,
  ServerProcess,
  startRedisCluster,
} from '@didcomm-mpr/test-kit';
import { forEachLimited, nowMs, withTimeout } from '../async-utils';
import { BENCH_CLIENT, BenchContext, liveSessionCount } from '../bench-context';
import { BenchServerOptions, startBenchServer } from '../bench-server';
import { ServerContender } from '../contenders/server.contender';
import { holdLiveSessions, releaseLiveSessions, runOpenLoop } from '../live-latency-recorder';
import { OpenLoopResult } from '../load-loops';
import { formatInt, formatMs } from '../stats';
import { describeRatio, ratioMet } from '../targets';
import { spreadOf } from '../three-way-table';

const execFileAsync = promisify(execFile);

export interface FleetOptions {
  /** The PostgreSQL server every contender runs on; the fleet gets a fresh database there. */
  adminUrl: string;
  rounds: number;
  connections: number;
  ratePerSecond: number;
  warmupMs: number;
  durationMs: number;
  /** Sessions re-established after instance A restarts, with this many addLiveSession calls in flight. */
  restartSessions: number;
  restartConcurrency: number;
}

/** The largest cross-instance p99 over a single instance's, per the issue. */
const CROSS_OVER_SINGLE_MAX = 2;

/**
 * What the fleet scenario starts (3 redis-server nodes, two server children, one fresh database), held here so that
 * run.ts can stop all of it from its cleanup, signal handlers and watchdog whatever happened.
 */
export class FleetRig {
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
        [...this.servers].map((server) =>
          server.stop().catch((error: unknown) => console.error(`[bench] stopping a fleet server failed: ${(error as Error).message}`)),
        ),
      );
      this.servers.clear();
      if (this.cluster) {
        await withTimeout(this.cluster.close(), 15_000, 'stopping the Redis Cluster').catch((error: unknown) =>
          console.error(`[bench] ${(error as Error).message}`),
        );
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

  /** From a process 'exit' handler: SIGKILL the servers (the redis nodes are killed by the kit's own hook). */
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

function describe(result: OpenLoopResult): string {
  return (
    `${formatInt(result.notified)} / ${formatInt(result.added)} notified (of ${formatInt(result.expected)} due) over ${result.sendSeconds.toFixed(1)} s, ` +
    `p50 ${formatMs(result.latency.p50)} / p99 ${formatMs(result.latency.p99)} / max ${formatMs(result.latency.max)}; ` +
    `addMessage ack p50 ${formatMs(result.addLatency.p50)} / p99 ${formatMs(result.addLatency.p99)}; max schedule lag ${formatMs(result.maxLagMs)}; ` +
    `${result.addErrors} add errors${result.firstAddError ? ` (first: ${result.firstAddError})` : ''}, ${result.duplicates} duplicates, ${result.ackErrors} failed acks; ` +
    `p99 per second: ${result.secondly.map((value) => value.toFixed(1)).join(', ')} ms`
  );
}

function allNotified(result: OpenLoopResult): boolean {
  return result.notified === result.added && result.added === result.expected && result.addErrors === 0;
}

/**
 * The fleet (server only): two instances A and B of the build on one fresh database of the same PostgreSQL server
 * and a 3-master Redis Cluster, the holder on A and the sender on B, against a single instance without Redis (the
 * bench's server, its table empty). First a run on the fleet right after it started (no warm-up), then rounds that
 * alternate single instance → fleet; the ratio is taken per round. Also: Redis commands per added message, and the
 * time to re-establish sessions after an instance restarts.
 */
export async function fleet(ctx: BenchContext, options: FleetOptions, rig: FleetRig, single: ServerContender): Promise<void> {
  try {
    rig.database = await createDatabase(options.adminUrl, 'bench_fleet');
    console.log(`[bench] fleet: created database ${rig.database.name}`);
    const clusterStarted = nowMs();
    rig.cluster = await withTimeout(startRedisCluster(3), 60_000, 'starting the Redis Cluster');
    const seeds = rig.cluster.seeds;
    console.log(`[bench] fleet: Redis Cluster of 3 masters at ${seeds} in ${((nowMs() - clusterStarted) / 1000).toFixed(1)} s`);
    const redisVersion =
      (await execFileAsync('redis-server', ['--version'], { timeout: 5_000 })).stdout
        .trim()
        .split(' ')
        .find((part) => part.startsWith('v=')) ?? '';

    const optionsOf = (instance: 'A' | 'B', port?: number): BenchServerOptions => ({
      databaseUrl: rig.database?.url,
      label: `server ${instance}`,
      port,
      env: { REDIS_CLUSTER_NODES: seeds, INSTANCE_ID: `bench-${instance.toLowerCase()}-${ctx.runId}` },
    });
    // One after the other: the first runs the migrations on the fresh database.
    const serverA = await rig.startServer(optionsOf('A'));
    const serverB = await rig.startServer(optionsOf('B'));
    ctx.report.note(
      `fleet setup: instances A (pid ${serverA.pid}) and B (pid ${serverB.pid}) of the same build, REDIS_CLUSTER_NODES=${seeds} ` +
        `(3 masters, no replicas, redis-server ${redisVersion} on this machine), fresh database ${rig.database.name} on the same PostgreSQL server as the rest; ` +
        `holder socket on A, sender socket on B; the single instance is the bench's server (no Redis), its table empty; everything on the same cores`,
    );

    const schedule = { ratePerSecond: options.ratePerSecond, warmupMs: options.warmupMs, durationMs: options.durationMs };
    const rate = formatInt(options.ratePerSecond);
    const connectionIds = Array.from({ length: options.connections }, () => randomUUID());
    const singleIds = Array.from({ length: options.connections }, () => randomUUID());
    const holder = await JsonRpcWsClient.connect(serverA.wsUrl, BENCH_CLIENT);
    const sender = await JsonRpcWsClient.connect(serverB.wsUrl, BENCH_CLIENT);
    const cross: OpenLoopResult[] = [];
    const singles: OpenLoopResult[] = [];
    let cold: OpenLoopResult;
    try {
      await holdLiveSessions(holder, connectionIds, ' on A');
      // The fleet has just started: the first messages it ever carries are measured, with no warm-up.
      cold = await runOpenLoop(ctx, holder, sender, {
        ...schedule,
        warmupMs: 0,
        connectionIds,
        messageId: (i) => `${ctx.runId}-cold-${i}`,
      });
      ctx.report.note(`fleet, just started, at ${rate} msg/s: ${describe(cold)}`);

      for (let round = 1; round <= options.rounds; round++) {
        console.log(`[bench] — fleet round ${round} of ${options.rounds}`);
        const alone = await single.live(singleIds, schedule);
        singles.push(alone);
        ctx.report.note(`fleet round ${round}: single instance at ${rate} msg/s: ${describe(alone)}`);
        const before = round === 1 ? await commandStats(rig.cluster) : undefined;
        const run = await runOpenLoop(ctx, holder, sender, { ...schedule, connectionIds, messageId: (i) => `${ctx.runId}-x${round}-${i}` });
        cross.push(run);
        ctx.report.note(`fleet round ${round}: cross-instance B → A at ${rate} msg/s: ${describe(run)}`);
        if (before) noteRedisCommands(ctx, before, await commandStats(rig.cluster), run.sent, rate);
      }
    } finally {
      await releaseLiveSessions(holder, sender, connectionIds);
    }

    const p99 = (results: OpenLoopResult[]) => spreadOf(results.map((result) => result.latency.p99));
    const p50 = (results: OpenLoopResult[]) => spreadOf(results.map((result) => result.latency.p50));
    const range = (spread: { median: number; min: number; max: number; count: number }) =>
      spread.count > 1 ? `${formatMs(spread.median)} (${formatMs(spread.min)}–${formatMs(spread.max)})` : formatMs(spread.median);
    const ratio = spreadOf(cross.map((result, k) => result.latency.p99 / singles[k].latency.p99));
    const singleP99 = p99(singles);
    const coldRatio = spreadOf([cold.latency.p99 / singleP99.median]);
    const everyOne = [...cross, cold].every(allNotified);
    ctx.report.add({
      name: `single instance (no Redis; its table empty), live at ${rate} msg/s: p99 / p50`,
      value: `${range(singleP99)} / ${range(p50(singles))}`,
    });
    ctx.report.add({
      name: `fleet (fresh database, nothing pending), cross-instance B → A at ${rate} msg/s: p99 / p50`,
      value: `${range(p99(cross))} / ${range(p50(cross))}`,
    });
    ctx.report.add({
      name: `fleet just started (first ${options.durationMs / 1000} s it carries, no warm-up): p99 / p50`,
      value: `${formatMs(cold.latency.p99)} / ${formatMs(cold.latency.p50)}`,
    });
    const notified = [...cross, cold].reduce((sum, result) => sum + result.notified, 0);
    const added = [...cross, cold].reduce((sum, result) => sum + result.added, 0);
    ctx.report.add({
      name: 'fleet: notified on A / added on B (all runs)',
      value: `${formatInt(notified)} / ${formatInt(added)}`,
      target: 'all',
      met: everyOne,
    });
    ctx.report.target({
      name: `fleet's cross-instance p99 ≤ ${CROSS_OVER_SINGLE_MAX}× a single instance's p99 at ${rate} msg/s, every message notified`,
      value: describeRatio(ratio) + (cross.every(allNotified) ? '' : '; NOT every message notified'),
      met: ratioMet(ratio, { atMost: CROSS_OVER_SINGLE_MAX }) && cross.every(allNotified),
    });
    ctx.report.target({
      name: `the same on a fleet that has just started (its p99 over the single instance's median p99)`,
      value: describeRatio(coldRatio) + (allNotified(cold) ? '' : '; NOT every message notified'),
      met: ratioMet(coldRatio, { atMost: CROSS_OVER_SINGLE_MAX }) && allNotified(cold),
    });

    await restart(ctx, options, rig, serverA, optionsOf);
  } finally {
    await rig.close();
  }
}

function noteRedisCommands(ctx: BenchContext, before: CommandStats, after: CommandStats, sent: number, rate: string): void {
  const calls = diffStats(before, after);
  const perMessage = (value: number) => (value / sent).toFixed(2);
  const spublish = calls.find(([name]) => name === 'spublish')?.[1] ?? 0;
  const publish = calls.find(([name]) => name === 'publish')?.[1] ?? 0;
  const totalCalls = calls.reduce((sum, [, value]) => sum + value, 0);
  ctx.report.add({
    name: 'Redis commands per added message (all commands, all nodes)',
    value: `${perMessage(totalCalls)} (${formatInt(totalCalls)} / ${formatInt(sent)}; ${formatInt(spublish)} SPUBLISH + ${formatInt(publish)} PUBLISH)`,
    target: '1 (one publish)',
    met: Math.abs(totalCalls / sent - 1) < 0.01 && Math.abs((spublish + publish) / sent - 1) < 0.01,
  });
  ctx.report.note(
    `Redis commands during fleet round 1 at ${rate} msg/s (INFO commandstats summed over the 3 nodes, after − before, INFO itself excluded; ` +
      `${formatInt(sent)} messages added incl. warm-up, acknowledged by removeMessages on A): ` +
      (calls.length ? calls.map(([name, value]) => `${name} ${formatInt(value)} (${perMessage(value)}/msg)`).join(', ') : 'none'),
  );
}

/** A holds N sessions, restarts (SIGTERM, start again on the same port), and they are re-established. */
async function restart(
  ctx: BenchContext,
  options: FleetOptions,
  rig: FleetRig,
  serverA: ServerProcess,
  optionsOf: (instance: 'A' | 'B', port?: number) => BenchServerOptions,
): Promise<ServerProcess> {
  const restartIds = Array.from({ length: options.restartSessions }, (_, k) => `${ctx.runId}-restart-${k}`);
  const sessionIds = restartIds.map(() => randomUUID());
  const register = async (client: JsonRpcWsClient): Promise<number> => {
    const started = nowMs();
    await forEachLimited(restartIds.length, options.restartConcurrency, async (k) => {
      const ok = await client.call<boolean>(
        'addLiveSession',
        { connectionId: restartIds[k], sessionId: sessionIds[k], reclaim: true },
        30_000,
      );
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
  const heldBefore = await liveSessionCount(serverA.httpUrl);
  const port = serverA.port;
  const stopStarted = nowMs();
  await rig.stopServer(serverA);
  const stopMs = nowMs() - stopStarted;
  first.terminate();
  const startStarted = nowMs();
  const restarted = await rig.startServer(optionsOf('A', port));
  const healthyAt = nowMs();
  const again = await JsonRpcWsClient.connect(restarted.wsUrl, BENCH_CLIENT);
  try {
    await withTimeout(register(again), 120_000, `re-establishing ${options.restartSessions} sessions on A`);
    const reestablishMs = nowMs() - healthyAt;
    const heldAfter = await liveSessionCount(restarted.httpUrl);
    ctx.report.add({
      name: `re-establish ${formatInt(options.restartSessions)} sessions after an instance restart (A healthy → all addLiveSession {reclaim:true} true)`,
      value: `${(reestablishMs / 1000).toFixed(2)} s (${formatInt((options.restartSessions * 1000) / reestablishMs)} sessions/s)`,
    });
    ctx.report.note(
      `instance restart: ${formatInt(options.restartSessions)} sessions on one socket to A, addLiveSession {reclaim:true} with ${options.restartConcurrency} in flight: ` +
        `first registration ${(initialMs / 1000).toFixed(2)} s (A's /health liveSessions ${formatInt(heldBefore)}); SIGTERM → exit ${(stopMs / 1000).toFixed(2)} s; ` +
        `start → /health OK ${((healthyAt - startStarted) / 1000).toFixed(2)} s; then all answered true in ${(reestablishMs / 1000).toFixed(2)} s ` +
        `(includes the WebSocket connect); A's /health liveSessions afterwards ${formatInt(heldAfter)}; same INSTANCE_ID and sessionIds as before the restart`,
    );
  } finally {
    await again.closeQuietly();
  }
  return restarted;
}
