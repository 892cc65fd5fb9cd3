/**
 * `npm run bench`: starts the server from apps/server/dist/main.js on a fresh database (or drives BENCH_URL),
 * measures the figures of the issue's "Benchmark" section over loopback WebSockets, prints each as it is
 * measured, then prints the Markdown table and saves it to bench/results/latest.md (a run with BENCH_QUICK,
 * BENCH_ONLY, BENCH_SERVER_ENTRY or BENCH_SERVER_NODE_ARGS to bench/results/latest-partial.md instead, so that
 * latest.md always holds a complete run of this tree's build).
 *
 * Environment:
 *   BENCH_URL           drive this running server (ws://host:port) instead of starting one; no memory figures
 *   BENCH_DATABASE_URL  start the server on a fresh `bench_<random>` database of this PostgreSQL (dropped at the
 *                       end); unset: the server's embedded PostgreSQL in a fresh temp DATA_DIR
 *   BENCH_QUICK=1       shorter runs and smaller counts (a smoke test of the bench itself, not figures to quote)
 *   BENCH_ONLY=a,b      run only these scenarios: add1, add32, live, expiry, drain, memory, cluster (for investigating one figure)
 *
 * The `cluster` scenario starts its own 3-master Redis Cluster (redis-server, redis-cli) and two more server
 * children on one fresh database of BENCH_DATABASE_URL's server, else of the system PostgreSQL at
 * postgres://postgres@127.0.0.1:5432 if reachable (else it is skipped with a note).
 *   BENCH_SERVER_NODE_ARGS  extra node flags for the server child (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof)
 *   BENCH_SERVER_ENTRY  another server build to start instead of apps/server/dist/main.js (to compare a change)
 *   BENCH_TOKENS_FILE=1 the server runs with an AUTH_TOKENS_FILE and the single-server scenarios present its token
 *                       (tenant `bench`, a rate limit they never reach); see bench-access.ts
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createDatabase, CreatedDatabase, idleMachineLoad, ServerProcess, sql } from '@didcomm-mpr/test-kit';
import { BenchAccess } from './bench-access';
import { BenchContext } from './bench-context';
import { SERVER_ENTRY, startBenchServer } from './bench-server';
import { ForcedGc } from './forced-gc';
import { MachineInfo, machineInfo } from './machine-info';
import { PayloadPool } from './payload';
import { Report } from './report';
import { addThroughput } from './scenarios/add-throughput';
import { drain } from './scenarios/drain';
import { expirySweep } from './scenarios/expiry-sweep';
import { liveLatency } from './scenarios/live-latency';
import { memory } from './scenarios/memory';
import { ClusterRig, crossInstance } from './scenarios/cluster';

/** The issue's targets (2-core machine, load generator on the same machine). */
const TARGETS = { addPerSecond32: 10_000, liveP99Ms: 5, drainPerSecond: 20_000, kibPerSession: 20, crossInstanceP99Ms: 15 };
/** Hard bound on the whole run: whatever hangs, the bench stops and kills the server by then. */
const WATCHDOG_MS = 20 * 60_000;

const quick = process.env.BENCH_QUICK === '1';
const scale = {
  warmupMs: quick ? 500 : 1_000,
  measureMs: quick ? 2_000 : 8_000,
  liveDurationMs: quick ? 3_000 : 10_000,
  backlog: quick ? 10_000 : 100_000,
  sockets: quick ? 1_000 : 10_000,
  sessionsOnOneSocket: quick ? 10_000 : 100_000,
  settleMs: quick ? 1_000 : 2_000,
  stepMs: quick ? 2_000 : 4_000,
  restartSessions: quick ? 2_000 : 10_000,
};

let server: ServerProcess | undefined;
let database: CreatedDatabase | undefined;
const clusterRig = new ClusterRig();
const access = BenchAccess.fromEnvironment();
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await clusterRig.close().catch((error: unknown) => console.error(`[bench] stopping the cluster run failed: ${(error as Error).message}`));
    if (server) await server.stop().catch((error: unknown) => console.error(`[bench] stopping the server failed: ${(error as Error).message}`));
    if (database) {
      await database
        .drop()
        .then(() => console.log(`[bench] dropped database ${database?.name}`))
        .catch((error: unknown) => console.error(`[bench] dropping ${database?.name} failed: ${(error as Error).message}`));
    }
    access.cleanup();
  })();
  return cleaning;
}

function httpBaseOf(url: string): string {
  const parsed = new URL(url);
  parsed.protocol = parsed.protocol === 'wss:' || parsed.protocol === 'https:' ? 'https:' : 'http:';
  return `${parsed.protocol}//${parsed.host}`;
}

function wsUrlOf(url: string): string {
  const parsed = new URL(url);
  parsed.protocol = parsed.protocol === 'https:' || parsed.protocol === 'wss:' ? 'wss:' : 'ws:';
  return parsed.toString();
}

async function main(): Promise<number> {
  const report = new Report();
  const runId = `bench-${randomBytes(4).toString('hex')}`;
  let machine: MachineInfo | undefined;
  let failures = 0;
  try {
    let ctx: BenchContext;
    const benchUrl = process.env.BENCH_URL?.trim();
    const adminUrl = process.env.BENCH_DATABASE_URL?.trim();
    if (benchUrl) {
      ctx = {
        wsUrl: access.wsUrl(wsUrlOf(benchUrl)),
        httpBase: httpBaseOf(benchUrl),
        serverPid: undefined,
        databaseUrl: undefined,
        runId,
        tenant: access.tenant,
        payloads: new PayloadPool(),
        report,
      };
      report.mode = `driving the running server at ${ctx.wsUrl} (BENCH_URL): memory figures skipped, backlog preloaded through addMessage`;
    } else {
      if (adminUrl) {
        database = await createDatabase(adminUrl, 'bench');
        console.log(`[bench] created database ${database.name}`);
      }
      console.log('[bench] starting the server …');
      server = await startBenchServer({ databaseUrl: database?.url, env: access.env });
      const databaseUrl = database?.url ?? (await server.embeddedDatabaseUrl());
      ctx = {
        wsUrl: access.wsUrl(server.wsUrl),
        httpBase: server.httpUrl,
        serverPid: server.pid,
        databaseUrl,
        runId,
        tenant: access.tenant,
        payloads: new PayloadPool(),
        report,
      };
      report.mode =
        `server child (pid ${server.pid}) from ${path.relative(process.cwd(), SERVER_ENTRY) || SERVER_ENTRY}, LOG_LEVEL=warn, ` +
        `${process.env.DATABASE_POOL_SIZE ? `DATABASE_POOL_SIZE=${process.env.DATABASE_POOL_SIZE}` : 'default pool'} and limits, ` +
        (database ? `fresh database ${database.name} on BENCH_DATABASE_URL's server` : 'embedded PostgreSQL in a fresh temp DATA_DIR');
    }
    if (quick) report.mode += '; BENCH_QUICK=1 (short runs, small counts: not figures to quote)';
    if (access.enabled) report.mode += '; BENCH_TOKENS_FILE=1 (AUTH_TOKENS_FILE, one rate-limited mediator token of tenant bench; the cluster scenario runs without)';

    let postgres = 'PostgreSQL version unknown (no SQL access with BENCH_URL)';
    if (ctx.databaseUrl) postgres = (await sql<{ version: string }>(ctx.databaseUrl, 'SELECT version()'))[0].version;
    machine = machineInfo(postgres);
    console.log(`[bench] ${machine.date} · ${machine.cpuModel} · ${machine.cores} cores · ${machine.ramGiB} · Node ${machine.node}`);
    console.log(`[bench] ${machine.postgres}`);
    console.log(`[bench] ${report.mode}; payload ${ctx.payloads.bytes} bytes`);

    const idle = await idleMachineLoad();
    const load = `before the first scenario (server idle), the machine used ${idle.busyPct.toFixed(0)}% CPU of ${idle.capacityPct.toFixed(0)}% (sum over cores)`;
    if (idle.busyPct > 15) report.note(`${load}: something else is running here, so the figures below are pessimistic; see "other processes" in each CPU line`);
    else report.note(load);

    if (ctx.databaseUrl) {
      report.note('after each queue scenario the bench runs VACUUM (ANALYZE) queued_message, so that the next one starts on a clean table instead of meeting an autovacuum of the previous one');
    }

    let scenarios: [string, () => Promise<unknown>][] = [
      ['addMessage ×1', () => addThroughput(ctx, { clients: 1, warmupMs: scale.warmupMs, measureMs: scale.measureMs, connections: 4 })],
      [
        'addMessage ×32',
        () => addThroughput(ctx, { clients: 32, warmupMs: scale.warmupMs, measureMs: scale.measureMs, connections: 64, target: TARGETS.addPerSecond32 }),
      ],
      ['live delivery', () => liveLatency(ctx, { connections: 100, ratePerSecond: 1_000, durationMs: scale.liveDurationMs, warmupMs: scale.warmupMs, targetP99Ms: TARGETS.liveP99Ms })],
      [
        'expiry sweep',
        () => expirySweep(ctx, { backlog: 3 * scale.backlog, backlogConnections: 1_000, connections: 100, ratePerSecond: 1_000, durationMs: scale.liveDurationMs, warmupMs: scale.warmupMs }),
      ],
      ['drain', () => drain(ctx, { backlog: scale.backlog, otherConnections: 1_000, batch: 100, maxDrainMs: 90_000, target: TARGETS.drainPerSecond })],
    ];
    if (server) {
      const gc = new ForcedGc(server.pid, server.inspectorPort);
      scenarios.push([
        'memory',
        () =>
          memory(
            ctx,
            { sockets: scale.sockets, sessionsOnOneSocket: scale.sessionsOnOneSocket, targetKiBPerSession: TARGETS.kibPerSession, settleMs: scale.settleMs },
            gc,
          ),
      ]);
    } else {
      report.note('memory figures skipped: BENCH_URL points at a server this bench did not start, so it cannot read its RSS');
    }

    scenarios.push([
      'cross-instance (Redis Cluster)',
      () =>
        crossInstance(
          ctx,
          {
            connections: 100,
            ratePerSecond: 1_000,
            warmupMs: scale.warmupMs,
            durationMs: scale.measureMs,
            targetP99Ms: TARGETS.crossInstanceP99Ms,
            steps: [1_000, 2_000, 4_000, 6_000, 8_000],
            stepWarmupMs: 500,
            stepMs: scale.stepMs,
            stepP99Ms: 50,
            restartSessions: scale.restartSessions,
            restartConcurrency: 64,
          },
          clusterRig,
        ),
    ]);

    const only = process.env.BENCH_ONLY?.split(',').map((key) => key.trim()).filter(Boolean);
    if (only?.length) {
      const keys: Record<string, string> = { add1: 'addMessage ×1', add32: 'addMessage ×32', live: 'live delivery', expiry: 'expiry sweep', drain: 'drain', memory: 'memory', cluster: 'cross-instance (Redis Cluster)' };
      const wanted = new Set(only.map((key) => keys[key] ?? key));
      scenarios = scenarios.filter(([name]) => wanted.has(name));
      report.mode += `; BENCH_ONLY=${only.join(',')}`;
    }

    for (const [name, run] of scenarios) {
      console.log(`[bench] — ${name}`);
      try {
        await run();
      } catch (error) {
        failures++;
        report.add({ name: `${name}: FAILED`, value: (error as Error).message.replace(/\|/g, '/') });
      }
      if (ctx.databaseUrl && name !== 'memory' && name !== 'cross-instance (Redis Cluster)') {
        // Each scenario starts from a clean table: the previous one's deleted rows are vacuumed now rather
        // than by an autovacuum run landing in the middle of the next measurement.
        const started = Date.now();
        await sql(ctx.databaseUrl, 'VACUUM (ANALYZE) queued_message').then(
          () => console.log(`[bench] VACUUM (ANALYZE) queued_message after ${name}: ${Date.now() - started} ms`),
          (error: unknown) => report.note(`VACUUM after ${name} failed: ${(error as Error).message}`),
        );
      }
      if (server?.exited()) {
        report.add({ name: 'server', value: 'the server process exited during the bench' });
        failures++;
        break;
      }
    }
  } catch (error) {
    failures++;
    report.add({ name: 'bench setup: FAILED', value: (error as Error).message.replace(/\|/g, '/') });
  } finally {
    await cleanup();
  }
  const table = report.render(machine);
  console.log(`\n${table}`);
  // Only a complete run of this tree's build replaces latest.md; a quick, partial, profiled or other-build run
  // goes beside it.
  const partial = quick || ['BENCH_ONLY', 'BENCH_SERVER_ENTRY', 'BENCH_SERVER_NODE_ARGS', 'BENCH_TOKENS_FILE'].some((name) => Boolean(process.env[name]?.trim()));
  const file = path.join(__dirname, 'results', partial ? 'latest-partial.md' : 'latest.md');
  console.log(`[bench] saved to ${report.save(machine, file)}`);
  return failures === 0 ? 0 : 1;
}

process.on('exit', () => {
  clusterRig.killNow();
  server?.killNow();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`[bench] ${signal}: stopping the server and exiting`);
    void cleanup().finally(() => process.exit(130));
  });
}
const watchdog = setTimeout(() => {
  console.error(`[bench] watchdog: still running after ${WATCHDOG_MS / 60_000} min; stopping`);
  void cleanup().finally(() => process.exit(2));
}, WATCHDOG_MS);
watchdog.unref();

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    void cleanup().finally(() => process.exit(1));
  },
);
