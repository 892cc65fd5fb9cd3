/**
 * `npm run bench`: three things side by side on the same PostgreSQL server, the same payloads and the same
 * connection ids, in alternating rounds (raw PostgreSQL → the in-process peer → this server, BENCH_ROUNDS times):
 *
 *   raw     what the PostgreSQL server itself allows, through `pg` from this process on a scratch queue table
 *   peer    @credo-ts/didcomm-transport-queue-postgres 0.0.1, driven in-process in a child process of its own
 *           (bench/peer: its own package.json and lockfile, installed on first use)
 *   server  the build at apps/server/dist/main.js as a child process, over loopback WebSockets
 *
 * then what only the server has: a fleet (two instances and a Redis Cluster) against a single instance, the expiry
 * sweep, memory per live session. Prints each figure as it is measured, then the Markdown report, and saves it to
 * bench/results/latest.md (a run with BENCH_QUICK, BENCH_ONLY, BENCH_ROUNDS other than 3, BENCH_SERVER_ENTRY or
 * BENCH_SERVER_NODE_ARGS to bench/results/latest-partial.md instead, so that latest.md always holds a complete
 * run of this tree's build).
 *
 * Environment:
 *   BENCH_DATABASE_URL  a PostgreSQL server to run everything on (fresh databases are created there and dropped at
 *                       the end; the peer needs TCP and a user with a password, or trust); unset: the server's
 *                       embedded PostgreSQL in a fresh temp DATA_DIR, which the raw and peer databases share
 *   BENCH_ROUNDS=n      rounds of the side-by-side figures and of the fleet (default 3; 2 with BENCH_QUICK)
 *   BENCH_QUICK=1       shorter runs and smaller counts (a smoke test of the bench itself, not figures to quote)
 *   BENCH_ONLY=a,b      only these: add1, add32, drain, live, live-backlog, fleet, expiry, memory
 *   BENCH_SERVER_ENTRY  another server build to start instead of apps/server/dist/main.js (to compare a change)
 *   BENCH_TOKENS_FILE=1 the server runs with an AUTH_TOKENS_FILE and the single-server figures present its token
 *                       (tenant `bench`, a rate limit they never reach); see bench-access.ts
 *   BENCH_SERVER_NODE_ARGS  extra node flags for the server child (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof)
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { createDatabase, CreatedDatabase, ForcedGc, idleMachineLoad, ServerProcess, sql, withDatabase } from '@didcomm-mpr/test-kit';
import { BenchAccess } from './bench-access';
import { BenchContext } from './bench-context';
import { SERVER_ENTRY, startBenchServer } from './bench-server';
import { Contender } from './contenders/contender';
import { PeerContender } from './contenders/peer.contender';
import { RawPostgresContender } from './contenders/raw-postgres.contender';
import { ServerContender } from './contenders/server.contender';
import { MachineInfo, machineInfo } from './machine-info';
import { PayloadPool } from './payload';
import { Report } from './report';
import { expirySweep } from './scenarios/expiry-sweep';
import { fleet, FleetRig } from './scenarios/fleet';
import { memory } from './scenarios/memory';
import { ThreeWayRun, ThreeWayScale, ThreeWaySteps } from './scenarios/three-way';
import { judgeThreeWayTargets } from './targets';

/** Hard bound on the whole run: whatever hangs, the bench stops and kills what it started by then. */
const WATCHDOG_MS = 60 * 60_000;
const SCENARIOS = ['add1', 'add32', 'drain', 'live', 'live-backlog', 'fleet', 'expiry', 'memory'] as const;
type Scenario = (typeof SCENARIOS)[number];

const quick = process.env.BENCH_QUICK === '1';

function roundsSetting(): number {
  const text = process.env.BENCH_ROUNDS?.trim();
  if (!text) return quick ? 2 : 3;
  const rounds = Number(text);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20)
    throw new Error(`BENCH_ROUNDS must be an integer from 1 to 20, not "${text}"`);
  return rounds;
}

function selectedScenarios(): Set<Scenario> {
  const only = process.env.BENCH_ONLY?.split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (!only?.length) return new Set(SCENARIOS);
  const aliases: Record<string, Scenario> = { cluster: 'fleet' };
  const unknown = only.filter((name) => !SCENARIOS.includes((aliases[name] ?? name) as Scenario));
  if (unknown.length) throw new Error(`BENCH_ONLY: unknown ${unknown.join(', ')} (known: ${SCENARIOS.join(', ')})`);
  return new Set(only.map((name) => (aliases[name] ?? name) as Scenario));
}

let rounds: number;
let selected: Set<Scenario>;
try {
  rounds = roundsSetting();
  selected = selectedScenarios();
} catch (error) {
  console.error(`[bench] ${(error as Error).message}`);
  process.exit(2);
}
const threeWayScale: ThreeWayScale = {
  rounds,
  warmupMs: quick ? 500 : 1_000,
  measureMs: quick ? 1_500 : 4_000,
  addConnections: 1_000,
  backlog: quick ? 5_000 : 100_000,
  otherConnections: 1_000,
  drainMaxMs: quick ? 20_000 : 30_000,
  liveConnections: 100,
  liveRate: 1_000,
  liveWarmupMs: quick ? 500 : 1_000,
  liveDurationMs: quick ? 2_000 : 5_000,
};
const steps: ThreeWaySteps = {
  add1: selected.has('add1'),
  add32: selected.has('add32'),
  drain: selected.has('drain'),
  live: selected.has('live'),
  liveBacklog: selected.has('live-backlog'),
};
const otherScale = {
  sockets: quick ? 1_000 : 10_000,
  sessionsOnOneSocket: quick ? 10_000 : 100_000,
  settleMs: quick ? 1_000 : 2_000,
  expiryBacklog: quick ? 30_000 : 300_000,
  restartSessions: quick ? 2_000 : 10_000,
};

const report = new Report();
let machine: MachineInfo | undefined;
/** Set by a signal or the watchdog: no further step starts. */
let stopping = false;
let server: ServerProcess | undefined;
let database: CreatedDatabase | undefined;
const contenderDatabases: CreatedDatabase[] = [];
let peer: PeerContender | undefined;
const fleetRig = new FleetRig();
const access = BenchAccess.fromEnvironment();
let cleaning: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const quietly = (what: string) => (error: unknown) => console.error(`[bench] ${what} failed: ${(error as Error).message}`);
    if (peer) await peer.close().catch(quietly('stopping the peer'));
    await fleetRig.close().catch(quietly('stopping the fleet'));
    // Before the server: on the embedded PostgreSQL these databases live in the server's cluster.
    for (const created of contenderDatabases)
      await created.drop().then(() => console.log(`[bench] dropped database ${created.name}`), quietly(`dropping ${created.name}`));
    if (server) await server.stop().catch(quietly('stopping the server'));
    if (database)
      await database.drop().then(() => console.log(`[bench] dropped database ${database?.name}`), quietly(`dropping ${database.name}`));
    access.cleanup();
  })();
  return cleaning;
}

async function step(name: string, run: () => Promise<unknown>): Promise<boolean> {
  if (stopping) return false;
  console.log(`[bench] — ${name}`);
  try {
    await run();
    return true;
  } catch (error) {
    console.error(error);
    report.add({ name: `${name}: FAILED`, value: (error as Error).message.replace(/\|/g, '/').replace(/\n/g, ' ') });
    return false;
  }
}

async function main(): Promise<number> {
  const runId = `bench-${randomBytes(4).toString('hex')}`;
  const payloads = new PayloadPool();
  let failures = 0;
  try {
    const adminUrl = process.env.BENCH_DATABASE_URL?.trim();
    if (adminUrl) {
      database = await createDatabase(adminUrl, 'bench');
      console.log(`[bench] created database ${database.name}`);
    }
    console.log('[bench] starting the server …');
    server = await startBenchServer({ databaseUrl: database?.url, env: access.env });
    const serverDatabaseUrl = database?.url ?? (await server.embeddedDatabaseUrl());
    if (!serverDatabaseUrl) throw new Error('no database URL for the server');
    // Everything runs on the server's PostgreSQL: its databases are created beside the server's.
    const postgresAdminUrl = adminUrl ?? withDatabase(serverDatabaseUrl, 'postgres');
    const ctx: BenchContext = {
      wsUrl: access.wsUrl(server.wsUrl),
      httpBase: server.httpUrl,
      serverPid: server.pid,
      databaseUrl: serverDatabaseUrl,
      runId,
      tenant: access.tenant,
      payloads,
      report,
    };
    const entry = path.relative(process.cwd(), SERVER_ENTRY) || SERVER_ENTRY;
    report.mode =
      `${adminUrl ? `BENCH_DATABASE_URL's PostgreSQL server (${new URL(adminUrl).host})` : "the server's embedded PostgreSQL in a fresh temp DATA_DIR"}, ` +
      `one fresh database per contender; ${payloads.bytes}-byte JWE-like payloads (${payloads.texts.length} distinct, the same for all); ` +
      `server ${process.env.DATABASE_POOL_SIZE ? `DATABASE_POOL_SIZE=${process.env.DATABASE_POOL_SIZE}` : 'default pool'} and limits (quotas raised for the backlog)` +
      (quick ? '; BENCH_QUICK=1 (short runs, small counts: not figures to quote)' : '') +
      (process.env.BENCH_ONLY ? `; BENCH_ONLY=${process.env.BENCH_ONLY}` : '') +
      (access.enabled
        ? '; BENCH_TOKENS_FILE=1 (AUTH_TOKENS_FILE, one rate-limited mediator token of tenant bench; the fleet runs without)'
        : '');

    const postgres = (await sql<{ version: string }>(serverDatabaseUrl, 'SELECT version()'))[0].version;
    machine = machineInfo(postgres);
    console.log(`[bench] ${machine.date} · ${machine.cpuModel} · ${machine.cores} cores · ${machine.ramGiB} · Node ${machine.node}`);
    console.log(`[bench] ${machine.postgres}`);
    console.log(`[bench] ${report.mode}`);
    const idle = await idleMachineLoad();
    const load =
      `before the first figure (server idle) the machine used ${idle.busyPct.toFixed(0)}% CPU of ${idle.capacityPct.toFixed(0)}% (sum over cores); ` +
      `load average ${os
        .loadavg()
        .map((value) => value.toFixed(2))
        .join(' / ')} (1 / 5 / 15 min)`;
    report.note(
      idle.busyPct > 15
        ? `${load}: something else is running here, so the figures are noisy; see "other processes" in each CPU line`
        : load,
    );

    const serverContender = new ServerContender(ctx, server, serverDatabaseUrl, entry);
    if (Object.values(steps).some(Boolean)) {
      const rawDatabase = await createDatabase(postgresAdminUrl, 'bench_raw');
      contenderDatabases.push(rawDatabase);
      const peerDatabase = await createDatabase(postgresAdminUrl, 'bench_peer');
      contenderDatabases.push(peerDatabase);
      const raw = await RawPostgresContender.create(rawDatabase.url, payloads);
      peer = await PeerContender.start(peerDatabase.url, payloads);
      const contenders: Contender[] = [raw, peer, serverContender];
      for (const contender of contenders) report.contenders.push(`${contender.name}: ${contender.description}`);
      report.threeWayHow =
        `${rounds} round${rounds > 1 ? 's' : ''}, each raw → peer → server through the same steps, each contender on a database of its own created for this run ` +
        `(its table emptied between figures and rounds). A cell: the median of the rounds (lowest–highest); ` +
        `latencies in ms. The ratios are taken within each round, then summarised the same way; for latencies a ratio below 1 favours the server. ` +
        `† a drain stopped at its ${threeWayScale.drainMaxMs / 1000} s bound in a round: its figure is the rate over what it drained (the notes say how much).`;
      const threeWay = new ThreeWayRun(report, contenders, threeWayScale, steps, server.pid);
      for (let round = 1; round <= rounds; round++) {
        if (!(await step(`side by side, round ${round}`, () => threeWay.round(round)))) {
          failures++;
          break;
        }
      }
      judgeThreeWayTargets(report);
      await peer.close();
      peer = undefined;
    }

    if (selected.has('fleet')) {
      const options = {
        adminUrl: postgresAdminUrl,
        rounds,
        connections: 100,
        ratePerSecond: 1_000,
        warmupMs: threeWayScale.liveWarmupMs,
        durationMs: threeWayScale.liveDurationMs,
      };
      const ok = await step('fleet (two instances, Redis Cluster) against a single instance', () =>
        fleet(ctx, { ...options, restartSessions: otherScale.restartSessions, restartConcurrency: 64 }, fleetRig, serverContender),
      );
      if (!ok) failures++;
    }
    if (selected.has('expiry')) {
      const ok = await step('expiry sweep', async () => {
        await serverContender.empty();
        await expirySweep(ctx, {
          backlog: otherScale.expiryBacklog,
          backlogConnections: 1_000,
          connections: 100,
          ratePerSecond: 1_000,
          durationMs: threeWayScale.liveDurationMs,
          warmupMs: threeWayScale.liveWarmupMs,
        });
        await serverContender.empty();
      });
      if (!ok) failures++;
    }
    if (selected.has('memory')) {
      const gc = new ForcedGc(server.pid, server.inspectorPort);
      const ok = await step('memory', () =>
        memory(
          ctx,
          {
            sockets: otherScale.sockets,
            sessionsOnOneSocket: otherScale.sessionsOnOneSocket,
            targetKiBPerSession: 20,
            settleMs: otherScale.settleMs,
          },
          gc,
        ),
      );
      if (!ok) failures++;
    }
    if (server.exited()) {
      report.add({ name: 'server', value: 'the server process exited during the bench' });
      failures++;
    }
  } catch (error) {
    console.error(error);
    failures++;
    report.add({ name: 'bench setup: FAILED', value: (error as Error).message.replace(/\|/g, '/').replace(/\n/g, ' ') });
  } finally {
    await cleanup();
  }
  saveReport(false);
  return failures === 0 ? 0 : 1;
}

const startedAt = Date.now();

/**
 * Prints and saves the report. Only a complete run of this tree's build replaces latest.md; a quick, partial,
 * interrupted, profiled or other-build run goes beside it.
 */
let saved = false;
function saveReport(interrupted: boolean): void {
  if (saved) return;
  saved = true;
  interrupted ||= stopping;
  report.note(
    `the whole run took ${((Date.now() - startedAt) / 60_000).toFixed(1)} min${interrupted ? ' (INTERRUPTED)' : ''}; load average at the end ${os
      .loadavg()
      .map((value) => value.toFixed(2))
      .join(' / ')}`,
  );
  console.log(`\n${report.render(machine)}`);
  const partial =
    interrupted ||
    quick ||
    rounds !== 3 ||
    ['BENCH_ONLY', 'BENCH_SERVER_ENTRY', 'BENCH_SERVER_NODE_ARGS', 'BENCH_TOKENS_FILE'].some((name) => Boolean(process.env[name]?.trim()));
  const file = path.join(__dirname, 'results', partial ? 'latest-partial.md' : 'latest.md');
  console.log(`[bench] saved to ${report.save(machine, file)}`);
}

process.on('exit', () => {
  peer?.killNow();
  fleetRig.killNow();
  server?.killNow();
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`[bench] ${signal}: stopping what the bench started and exiting`);
    stopping = true;
    void cleanup().finally(() => {
      saveReport(true);
      process.exit(130);
    });
  });
}
const watchdog = setTimeout(() => {
  console.error(`[bench] watchdog: still running after ${WATCHDOG_MS / 60_000} min; stopping`);
  stopping = true;
  void cleanup().finally(() => {
    saveReport(true);
    process.exit(2);
  });
}, WATCHDOG_MS);
watchdog.unref();

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    void cleanup().finally(() => process.exit(1));
  },
);
