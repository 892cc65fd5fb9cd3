/**
 * `npm run bench:paired -- <name>=<build entry>[,VAR=value…] <name>=<build entry>…`: server builds compared in paired
 * runs, for a change on the hot path. `npm run bench` puts one build beside raw PostgreSQL and the peer; this puts
 * builds beside each other, server only, in rotated order (round r starts with build r mod n, so no build always runs
 * first or after the same one), each run on a fresh database, and reports what the server spends per message as well
 * as its rates: on a shared machine a rate moves with everything else, the server's own CPU per message much less.
 *
 * Each run: PAIRED_ADDS `addMessage` from PAIRED_CALLERS sockets (one call in flight each) over 1,000 connections
 * after a warm-up of 2,000; then 2,000 adds from one socket (the 1-caller latency); then the drain of what they left,
 * connection by connection, with `takeFromQueue` (100) + `removeMessages` from one socket. The same 1.8 KiB payloads
 * as `npm run bench`.
 *
 * Environment: BENCH_DATABASE_URL (a PostgreSQL server for the fresh databases; unset: each run's server starts its
 * embedded PostgreSQL in a fresh DATA_DIR), PAIRED_ROUNDS (default 4), PAIRED_ADDS (20,000), PAIRED_CALLERS (32),
 * BENCH_TOKENS_FILE=1 (as for `npm run bench`: a tokens file and its token on every socket; builds from before
 * tokens files ignore it). `,VAR=value` after an entry sets a variable for that build's server only.
 */
import { createDatabase, CreatedDatabase, JsonRpcWsClient, processTreeCpu, withDatabase } from '@didcomm-mpr/test-kit';
import { BenchAccess } from './bench-access';
import { startBenchServer } from './bench-server';
import { BENCH_RECIPIENT_DID, PayloadPool } from './payload';
import { summarize } from './stats';

interface Build {
  name: string;
  entry: string;
  env: Record<string, string>;
}

interface RunFigures {
  addsPerSecond: number;
  addCpuUs: number;
  add1P50Ms: number;
  drainPerSecond: number;
  drainCpuUs: number;
}

const CONNECTIONS = 1_000;
const WARM_UP_ADDS = 2_000;
const SINGLE_CALLER_ADDS = 2_000;
const TAKE_LIMIT = 100;

function positiveInt(name: string, fallback: number): number {
  const text = process.env[name]?.trim();
  if (!text) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not "${text}"`);
  return value;
}

function parseBuilds(args: string[]): Build[] {
  const builds = args.map((arg) => {
    const [head, ...vars] = arg.split(',');
    const at = head.indexOf('=');
    if (at < 1 || at === head.length - 1) throw new Error(`"${arg}" is not <name>=<build entry>[,VAR=value…]`);
    const env = Object.fromEntries(
      vars.map((pair) => {
        const eq = pair.indexOf('=');
        if (eq < 1) throw new Error(`"${pair}" in "${arg}" is not VAR=value`);
        return [pair.slice(0, eq), pair.slice(eq + 1)];
      }),
    );
    return { name: head.slice(0, at), entry: head.slice(at + 1), env };
  });
  if (builds.length < 2) throw new Error('give at least two builds: <name>=<build entry> <name>=<build entry>');
  return builds;
}

const median = (values: number[]): number => summarize(values).p50;

async function measure(build: Build, access: BenchAccess, payloads: PayloadPool, adds: number, callers: number): Promise<RunFigures> {
  const adminUrl = process.env.BENCH_DATABASE_URL?.trim();
  let database: CreatedDatabase | undefined;
  if (adminUrl) database = await createDatabase(withDatabase(adminUrl, 'postgres'), 'bench_paired');
  const server = await startBenchServer({ entry: build.entry, databaseUrl: database?.url, env: { ...access.env, ...build.env } });
  const sockets: JsonRpcWsClient[] = [];
  try {
    for (let i = 0; i < callers; i++) sockets.push(await JsonRpcWsClient.connect(access.wsUrl(server.wsUrl), { record: false }));
    const add = (socket: JsonRpcWsClient, i: number) =>
      socket.call('addMessage', {
        connectionId: `paired-${i % CONNECTIONS}`,
        recipientDids: [BENCH_RECIPIENT_DID],
        payload: JSON.parse(payloads.take()) as unknown,
      });
    const addAll = async (count: number, from: JsonRpcWsClient[]) => {
      let next = 0;
      await Promise.all(
        from.map(async (socket) => {
          for (let i = next++; i < count; i = next++) await add(socket, i);
        }),
      );
    };
    await addAll(WARM_UP_ADDS, sockets);

    let cpu = processTreeCpu(server.pid).own;
    let started = process.hrtime.bigint();
    await addAll(adds, sockets);
    const addSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const addCpu = processTreeCpu(server.pid).own - cpu;

    const latencies: number[] = [];
    for (let i = 0; i < SINGLE_CALLER_ADDS; i++) {
      const sent = process.hrtime.bigint();
      await add(sockets[0], i);
      latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
    }

    cpu = processTreeCpu(server.pid).own;
    started = process.hrtime.bigint();
    let drained = 0;
    for (let c = 0; c < CONNECTIONS; c++) {
      for (;;) {
        const taken = await sockets[0].call<{ id: string }[]>('takeFromQueue', { connectionId: `paired-${c}`, limit: TAKE_LIMIT });
        if (taken.length === 0) break;
        await sockets[0].call('removeMessages', { connectionId: `paired-${c}`, messageIds: taken.map((message) => message.id) });
        drained += taken.length;
      }
    }
    const drainSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const drainCpu = processTreeCpu(server.pid).own - cpu;
    return {
      addsPerSecond: adds / addSeconds,
      addCpuUs: (addCpu * 1e6) / adds,
      add1P50Ms: median(latencies),
      drainPerSecond: drained / drainSeconds,
      drainCpuUs: (drainCpu * 1e6) / drained,
    };
  } finally {
    await Promise.all(sockets.map((socket) => socket.close()));
    await server.stop();
    await database?.drop();
  }
}

function line(name: string, figures: RunFigures): string {
  return (
    `${name}: adds ×${positiveInt('PAIRED_CALLERS', 32)} ${figures.addsPerSecond.toFixed(0)}/s at ${figures.addCpuUs.toFixed(0)} µs ` +
    `of server CPU each; add ×1 p50 ${figures.add1P50Ms.toFixed(2)} ms; drain ${figures.drainPerSecond.toFixed(0)}/s at ` +
    `${figures.drainCpuUs.toFixed(0)} µs each`
  );
}

async function main(): Promise<void> {
  const builds = parseBuilds(process.argv.slice(2));
  const rounds = positiveInt('PAIRED_ROUNDS', 4);
  const adds = positiveInt('PAIRED_ADDS', 20_000);
  const callers = positiveInt('PAIRED_CALLERS', 32);
  const access = BenchAccess.fromEnvironment();
  const payloads = new PayloadPool();
  const results = new Map<string, RunFigures[]>(builds.map((build) => [build.name, []]));
  try {
    for (let round = 0; round < rounds; round++) {
      const order = [...builds.slice(round % builds.length), ...builds.slice(0, round % builds.length)];
      for (const build of order) {
        const figures = await measure(build, access, payloads, adds, callers);
        results.get(build.name)!.push(figures);
        console.log(`[paired] round ${round + 1}, ${line(build.name, figures)}`);
      }
    }
  } finally {
    access.cleanup();
  }
  const base = results.get(builds[0].name)!;
  console.log(`\nMedians of ${rounds} rounds; in brackets, the median of the per-round ratios to ${builds[0].name}:`);
  for (const build of builds) {
    const runs = results.get(build.name)!;
    const ratio = (pick: (figures: RunFigures) => number) =>
      median(runs.map((figures, round) => pick(figures) / pick(base[round]))).toFixed(2);
    console.log(
      `${build.name}: adds ×${callers} ${median(runs.map((r) => r.addsPerSecond)).toFixed(0)}/s (${ratio((r) => r.addsPerSecond)}), ` +
        `${median(runs.map((r) => r.addCpuUs)).toFixed(0)} µs/add (${ratio((r) => r.addCpuUs)}); ` +
        `add ×1 p50 ${median(runs.map((r) => r.add1P50Ms)).toFixed(2)} ms (${ratio((r) => r.add1P50Ms)}); ` +
        `drain ${median(runs.map((r) => r.drainPerSecond)).toFixed(0)}/s (${ratio((r) => r.drainPerSecond)}), ` +
        `${median(runs.map((r) => r.drainCpuUs)).toFixed(0)} µs/msg (${ratio((r) => r.drainCpuUs)})`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
