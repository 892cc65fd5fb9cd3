import { randomUUID } from 'node:crypto';
import { sql } from '@didcomm-mpr/test-kit';
import { BacklogSpec } from '../backlog';
import { Contender, tableState } from '../contenders/contender';
import { CpuMeter } from '../cpu-meter';
import { ClosedLoopResult, DrainResult, OpenLoopResult } from '../load-loops';
import { Report } from '../report';
import { formatInt, formatMs, LatencySummary } from '../stats';

export interface ThreeWayScale {
  rounds: number;
  warmupMs: number;
  measureMs: number;
  /** Connection ids the add figures spread their messages over. */
  addConnections: number;
  /** Messages of the drained connection, and as many again over `otherConnections` others. */
  backlog: number;
  otherConnections: number;
  drainMaxMs: number;
  liveConnections: number;
  liveRate: number;
  liveWarmupMs: number;
  liveDurationMs: number;
}

/** Which figures to measure (BENCH_ONLY). */
export interface ThreeWaySteps {
  add1: boolean;
  add32: boolean;
  drain: boolean;
  live: boolean;
  liveBacklog: boolean;
}

/** Clients of the raw figure the 32-caller adds are compared with: PostgreSQL's own best concurrency on 2 cores. */
const RAW_CLIENTS = 16;

/**
 * The side-by-side figures. Each round measures raw PostgreSQL, then the peer, then the server, each from an empty
 * table through the same steps on the same connection ids and payloads; ratios are taken within a round.
 */
export class ThreeWayRun {
  /** The same connection ids for every contender; UUIDs because the peer's table types connection_id as uuid. */
  private readonly addIds: string[];
  private readonly otherIds: string[];
  private readonly targetId = randomUUID();
  private readonly liveIds: string[];
  /** Raw 16-client commit latency per round: the raw column of the live rows. */
  private readonly rawCommit = new Map<number, LatencySummary>();

  constructor(
    private readonly report: Report,
    private readonly contenders: Contender[],
    private readonly scale: ThreeWayScale,
    private readonly steps: ThreeWaySteps,
    private readonly serverPid: number | undefined,
  ) {
    this.addIds = Array.from({ length: scale.addConnections }, () => randomUUID());
    this.otherIds = Array.from({ length: scale.otherConnections }, () => randomUUID());
    this.liveIds = Array.from({ length: scale.liveConnections }, () => randomUUID());
    this.defineRows();
  }

  private defineRows(): void {
    const table = this.report.threeWay;
    const s = this.scale;
    const backlog = formatInt(s.backlog);
    const others = `${backlog} pending over ${formatInt(s.otherConnections)} other connections`;
    const emptied =
      'empty: emptied and ANALYZEd before the figure (raw, peer: TRUNCATE; server: removeAllMessages + VACUUM ANALYZE); database created for this run';
    if (this.steps.add1) {
      table.define({
        key: 'add1',
        figure: `add, 1 caller: msg/s (over ${formatInt(s.addConnections)} connections)`,
        table: emptied,
        unit: 'rate',
        rawNote: 'single-row commits',
      });
      table.define({ key: 'add1-latency', figure: 'add, 1 caller: latency (ms)', table: 'as above', unit: 'latency' });
    }
    if (this.steps.add32) {
      table.define({
        key: 'add32',
        figure: `add, 32 callers: msg/s (over ${formatInt(s.addConnections)} connections)`,
        table: emptied,
        unit: 'rate',
        rawNote: `single-row commits, ${RAW_CLIENTS} clients`,
      });
      table.define({
        key: 'add32-latency',
        figure: 'add, 32 callers: latency (ms)',
        table: 'as above',
        unit: 'latency',
        rawNote: `${RAW_CLIENTS} clients`,
      });
    }
    if (this.steps.drain) {
      table.define({
        key: 'load',
        figure: `backlog arrival: rows/s (${formatInt(2 * s.backlog)} through the add path)`,
        table: `empty, statistics of the empty table; one connection and ${formatInt(s.otherConnections)} others interleaved 1:1`,
        unit: 'rate',
        rawNote: `100-row INSERTs, ${RAW_CLIENTS} clients`,
      });
      table.define({
        key: 'drain-stale',
        figure: `drain ${backlog} of one connection, take 100 + remove: msg/s`,
        table: `beside ${others}, all just arrived through the add path into the emptied table; statistics of a new, empty table (column statistics cleared, ANALYZEd empty, no ANALYZE since: autovacuum off for the table during the load and the drain)`,
        unit: 'rate',
        rawNote: 'DELETE … RETURNING 100 in index order',
      });
      table.define({
        key: 'drain-analyzed',
        figure: `drain ${backlog} of one connection, take 100 + remove: msg/s`,
        table: `the same backlog in the same interleaved order (${backlog} of the connection beside ${others}), written again by SQL in the contender's own row format into the emptied table, then VACUUM ANALYZE`,
        unit: 'rate',
        rawNote: 'DELETE … RETURNING 100 in index order',
      });
    }
    const rate = formatInt(s.liveRate);
    const held = `${s.liveConnections} connections held live, the holder acknowledging (removeMessages)`;
    if (this.steps.live) {
      table.define({
        key: 'live-fresh',
        figure: `live delivery at ${rate} msg/s: add → delivered (ms)`,
        table: `empty (emptied and ANALYZEd before); ${held}`,
        unit: 'latency',
        rawNote: `${RAW_CLIENTS}-client commit`,
      });
    }
    if (this.steps.liveBacklog) {
      table.define({
        key: 'live-backlog',
        figure: `live delivery at ${rate} msg/s: add → delivered (ms)`,
        table: `beside ${others}, VACUUM ANALYZE before; ${held}`,
        unit: 'latency',
        rawNote: `${RAW_CLIENTS}-client commit`,
      });
    }
  }

  async round(round: number): Promise<void> {
    for (const contender of this.contenders) {
      console.log(`[bench] — round ${round} of ${this.scale.rounds}: ${contender.name}`);
      await this.contenderRound(contender, round);
    }
  }

  private async contenderRound(contender: Contender, round: number): Promise<void> {
    const s = this.scale;
    const table = this.report.threeWay;
    const name = contender.name;
    await contender.empty();
    if (this.steps.add1) {
      const result = await this.measure(
        contender,
        round,
        'add ×1',
        () => contender.add(1, this.addIds, s.warmupMs, s.measureMs),
        describeAdd,
      );
      table.record('add1', name, round, { value: result.rate, complete: result.errors === 0 });
      table.record('add1-latency', name, round, { value: result.latency.p99, p50: result.latency.p50 });
      await contender.empty();
    }
    const raw16 = name === 'raw' && (this.steps.add32 || this.steps.live || this.steps.liveBacklog);
    if (this.steps.add32 || raw16) {
      const callers = name === 'raw' ? RAW_CLIENTS : 32;
      const result = await this.measure(
        contender,
        round,
        `add ×${callers}`,
        () => contender.add(callers, this.addIds, s.warmupMs, s.measureMs),
        describeAdd,
      );
      if (this.steps.add32) {
        table.record('add32', name, round, { value: result.rate, complete: result.errors === 0 });
        table.record('add32-latency', name, round, { value: result.latency.p99, p50: result.latency.p50 });
      }
      if (name === 'raw') this.rawCommit.set(round, result.latency);
      await contender.empty();
    }
    const rawCommit = this.rawCommit.get(round);
    if (name === 'raw' && rawCommit) {
      for (const key of ['live-fresh', 'live-backlog'])
        if (table.has(key)) table.record(key, 'raw', round, { value: rawCommit.p99, p50: rawCommit.p50 });
    }
    if (this.steps.live && contender.live) {
      const result = await this.measure(
        contender,
        round,
        'live, empty table',
        () => contender.live!(this.liveIds, this.schedule()),
        describeLive,
      );
      table.record('live-fresh', name, round, liveSample(result));
    }
    if (this.steps.drain) await this.drains(contender, round);
    if (this.steps.liveBacklog && contender.live) {
      if (!this.steps.drain) {
        const spec: BacklogSpec = {
          targetConnectionId: this.targetId,
          targetMessages: 0,
          otherConnectionIds: this.otherIds,
          otherMessages: s.backlog,
        };
        const loaded = await contender.load(spec);
        this.report.note(
          `${name} round ${round}: the others' backlog of ${formatInt(loaded.rows)} arrived in ${loaded.seconds.toFixed(1)} s (${loaded.how})`,
        );
      }
      await contender.vacuum(true);
      const state = await tableState(contender.databaseUrl, contender.table);
      const result = await this.measure(
        contender,
        round,
        `live beside ${formatInt(state.liveRows)} pending of others`,
        () => contender.live!(this.liveIds, this.schedule()),
        describeLive,
      );
      table.record('live-backlog', name, round, liveSample(result));
    }
    await contender.empty();
  }

  /** Both drains of the round: the backlog just arrived (statistics of the empty table), then re-added and analysed. */
  private async drains(contender: Contender, round: number): Promise<void> {
    const s = this.scale;
    const table = this.report.threeWay;
    const name = contender.name;
    const spec: BacklogSpec = {
      targetConnectionId: this.targetId,
      targetMessages: s.backlog,
      otherConnectionIds: this.otherIds,
      otherMessages: s.backlog,
    };
    // The statistics of a new, empty table: an ANALYZE that finds no rows keeps the column statistics of the rows
    // it saw last (the previous round's backlog, which would describe this one), so those are cleared first.
    await forgetColumnStatistics(this.report, contender, round);
    // Statistics must stay those of the empty table until the drain ends: autovacuum would analyse a table that
    // grew this much within a minute, sooner or later depending on the contender's speed.
    await setAutovacuum(contender, false);
    let stale: DrainResult;
    try {
      const before = await tableState(contender.databaseUrl, contender.table);
      const loaded = await this.measure(
        contender,
        round,
        'backlog arrival',
        () => contender.load(spec),
        (r) => `${formatInt(r.rows)} rows in ${r.seconds.toFixed(1)} s (${r.how})`,
      );
      table.record('load', name, round, { value: loaded.rate });
      stale = await this.measure(
        contender,
        round,
        'drain, backlog just arrived (no ANALYZE)',
        () => contender.drain(this.targetId, s.backlog, s.drainMaxMs),
        describeDrain,
      );
      const after = await tableState(contender.databaseUrl, contender.table);
      if (after.analyzeCount !== before.analyzeCount) {
        this.report.note(
          `${name} round ${round}: the table was ANALYZEd during the load or the stale drain (${after.analyzeCount - before.analyzeCount} times): that drain did not run on stale statistics`,
        );
      }
    } finally {
      await setAutovacuum(contender, true);
    }
    table.record('drain-stale', name, round, { value: stale.rate, bounded: !stale.complete });

    // The same backlog in the same order, so that the two drains differ by the statistics only; how it arrives is
    // what the figure above measures, so here it is written by SQL.
    await contender.empty();
    const seeded = await contender.seed(spec);
    await contender.vacuum(true);
    const state = await tableState(contender.databaseUrl, contender.table);
    this.report.note(
      `${name} round ${round}: the backlog written again in ${seeded.seconds.toFixed(1)} s (${formatInt(seeded.rows)} rows, ${seeded.how}); ` +
        `after VACUUM ANALYZE the table holds ${formatInt(state.liveRows)} rows`,
    );
    const analyzed = await this.measure(
      contender,
      round,
      'drain after VACUUM ANALYZE',
      () => contender.drain(this.targetId, s.backlog, s.drainMaxMs),
      describeDrain,
    );
    table.record('drain-analyzed', name, round, { value: analyzed.rate, bounded: !analyzed.complete });
    if (!analyzed.complete) await contender.removeConnection(this.targetId);
  }

  private schedule() {
    return { ratePerSecond: this.scale.liveRate, warmupMs: this.scale.liveWarmupMs, durationMs: this.scale.liveDurationMs };
  }

  /** Runs one measurement with a CPU meter around it and notes what it saw. */
  private async measure<T>(
    contender: Contender,
    round: number,
    what: string,
    run: () => Promise<T>,
    describe: (result: T) => string,
  ): Promise<T> {
    const meter = new CpuMeter(
      contender.name === 'peer' && contender.pid !== undefined ? { label: 'peer', pid: contender.pid } : undefined,
      this.serverPid,
    );
    const result = await run();
    const line = `${contender.name} round ${round}: ${what}: ${describe(result)}; ${meter.read().text}`;
    this.report.note(line);
    return result;
  }
}

function describeAdd(result: ClosedLoopResult): string {
  return (
    `${formatInt(result.rate)}/s, latency p50 ${formatMs(result.latency.p50)} / p99 ${formatMs(result.latency.p99)} / max ${formatMs(result.latency.max)}; ` +
    `${result.errors} errors${result.firstError ? ` (first: ${result.firstError})` : ''}`
  );
}

function describeDrain(result: DrainResult): string {
  return (
    `${formatInt(result.drained)} of ${formatInt(result.expected)} in ${result.seconds.toFixed(1)} s = ${formatInt(result.rate)}/s ` +
    `(first 10% ${formatInt(result.firstTenthRate)}/s, last 10% ${formatInt(result.lastTenthRate)}/s); ` +
    `take p50 ${formatMs(result.take.p50)} / p99 ${formatMs(result.take.p99)}` +
    (result.remove.count ? `, remove p50 ${formatMs(result.remove.p50)} / p99 ${formatMs(result.remove.p99)}` : '') +
    (result.complete ? '' : ' — DID NOT FINISH within the time bound')
  );
}

function describeLive(result: OpenLoopResult): string {
  return (
    `${formatInt(result.notified)} of ${formatInt(result.added)} added delivered (${formatInt(result.expected)} due), ` +
    `p50 ${formatMs(result.latency.p50)} / p99 ${formatMs(result.latency.p99)} / max ${formatMs(result.latency.max)}; ` +
    `add acknowledged p50 ${formatMs(result.addLatency.p50)} / p99 ${formatMs(result.addLatency.p99)}; ` +
    `${result.addErrors} add errors${result.firstAddError ? ` (first: ${result.firstAddError})` : ''}, ${result.duplicates} duplicates, ${result.ackErrors} failed acks; ` +
    `max schedule lag ${formatMs(result.maxLagMs)}; p99 per second: ${result.secondly.map((value) => value.toFixed(1)).join(', ')} ms`
  );
}

function liveSample(result: OpenLoopResult) {
  return {
    value: result.latency.p99,
    p50: result.latency.p50,
    complete: result.notified === result.added && result.added === result.expected,
  };
}

/** Removes the table's column statistics (a superuser's right) and analyses it empty: what a new table's planner sees. */
async function forgetColumnStatistics(report: Report, contender: Contender, round: number): Promise<void> {
  try {
    await sql(contender.databaseUrl, `DELETE FROM pg_statistic WHERE starelid = '${contender.table}'::regclass`);
  } catch (error) {
    report.note(
      `${contender.name} round ${round}: the column statistics of earlier rounds could not be cleared (${(error as Error).message}): ` +
        "this round's drain after the backlog arrived ran on them, not on those of a new table",
    );
  }
  await sql(contender.databaseUrl, `ANALYZE ${contender.table}`);
}

async function setAutovacuum(contender: Contender, enabled: boolean): Promise<void> {
  await sql(
    contender.databaseUrl,
    enabled
      ? `ALTER TABLE ${contender.table} RESET (autovacuum_enabled)`
      : `ALTER TABLE ${contender.table} SET (autovacuum_enabled = false)`,
  );
}
