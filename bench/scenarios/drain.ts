import { JsonRpcWsClient, sql } from '@didcomm-mpr/test-kit';
import { forEachLimited, nowMs } from '../async-utils';
import { BENCH_CLIENT, BenchContext } from '../bench-context';
import { CpuMeter } from '../cpu-meter';
import { formatInt, formatMs } from '../stats';
import { BacklogSpec, preloadByRpc, preloadBySql } from './preload';

export interface DrainOptions {
  backlog: number;
  otherConnections: number;
  batch: number;
  maxDrainMs: number;
  target: number;
}

/**
 * Drain rate: one connection holds `backlog` pending messages while `otherConnections` others hold as many
 * again; one client drains it with takeFromQueue(limit) + removeMessages(ids) until the queue is empty.
 */
export async function drain(ctx: BenchContext, options: DrainOptions): Promise<void> {
  const spec: BacklogSpec = {
    targetConnectionId: `${ctx.runId}-drain-target`,
    targetMessages: options.backlog,
    othersPrefix: `${ctx.runId}-drain-other-`,
    otherConnections: options.otherConnections,
    otherMessages: options.backlog,
  };
  const preloadSeconds = ctx.databaseUrl ? await preloadBySql(ctx, ctx.databaseUrl, spec) : await preloadByRpc(ctx, spec);
  const client = await JsonRpcWsClient.connect(ctx.wsUrl, BENCH_CLIENT);
  try {
    const available = await client.call<number>('getAvailableMessageCount', { connectionId: spec.targetConnectionId });
    ctx.report.note(
      `drain: preloaded ${formatInt(options.backlog)} messages for one connection + ${formatInt(options.backlog)} over ` +
        `${formatInt(options.otherConnections)} others in ${preloadSeconds.toFixed(1)} s ` +
        `(${ctx.databaseUrl ? 'SQL into queued_message, then ANALYZE' : 'JSON-RPC addMessage batches'}); the target reports ${formatInt(available)} available`,
    );

    const checkpoints: { drained: number; at: number }[] = [];
    let drained = 0;
    let takeMs = 0;
    let removeMs = 0;
    let rounds = 0;
    const meter = new CpuMeter(ctx.serverPid);
    const start = nowMs();
    checkpoints.push({ drained: 0, at: start });
    const takeParams = JSON.stringify({ connectionId: spec.targetConnectionId, limit: options.batch });
    while (nowMs() - start < options.maxDrainMs) {
      const t0 = nowMs();
      const messages = await client.callJson<{ id: string }[]>('takeFromQueue', takeParams, 30_000);
      const t1 = nowMs();
      takeMs += t1 - t0;
      if (messages.length === 0) break;
      await client.call('removeMessages', { connectionId: spec.targetConnectionId, messageIds: messages.map((m) => m.id) }, 30_000);
      removeMs += nowMs() - t1;
      drained += messages.length;
      rounds++;
      checkpoints.push({ drained, at: nowMs() });
    }
    const end = checkpoints[checkpoints.length - 1].at;
    const cpu = meter.read();
    const rateBetween = (fromFraction: number, toFraction: number): number => {
      const from = checkpoints.find((c) => c.drained >= fromFraction * available) ?? checkpoints[0];
      const to = checkpoints.find((c) => c.drained >= toFraction * available) ?? checkpoints[checkpoints.length - 1];
      return to.at > from.at ? ((to.drained - from.drained) * 1000) / (to.at - from.at) : Number.NaN;
    };
    const overall = (drained * 1000) / (end - start);
    const complete = drained >= available;
    ctx.report.add({
      name: `Drain rate (take+remove ×${options.batch}), overall`,
      value: `${formatInt(overall)} msg/s`,
      target: `≥ ${formatInt(options.target)} msg/s`,
      met: overall >= options.target && complete,
    });
    ctx.report.add({ name: 'Drain rate, first 10% of the backlog', value: `${formatInt(rateBetween(0, 0.1))} msg/s` });
    ctx.report.add({ name: 'Drain rate, last 10% of the backlog', value: `${formatInt(rateBetween(0.9, 1))} msg/s` });

    let othersLeft: number;
    if (ctx.databaseUrl) {
      const rows = await sql<{ n: number }>(ctx.databaseUrl, `SELECT count(*)::int AS n FROM queued_message WHERE connection_id LIKE $1 || '%' AND state = 0`, [
        spec.othersPrefix,
      ]);
      othersLeft = rows[0].n;
    } else {
      othersLeft = 0;
      await forEachLimited(options.otherConnections, 8, async (k) => {
        // Read first, then add: `x += await …` would read x before the await and lose concurrent updates.
        const count = await client.call<number>('getAvailableMessageCount', { connectionId: `${spec.othersPrefix}${k}` });
        othersLeft += count;
      });
    }
    ctx.report.note(
      `drain: ${formatInt(drained)} of ${formatInt(available)} drained in ${((end - start) / 1000).toFixed(1)} s, ${formatInt(rounds)} rounds; ` +
        `mean round trip take ${formatMs(takeMs / Math.max(1, rounds))}, remove ${formatMs(removeMs / Math.max(1, rounds))}; ` +
        `others still hold ${formatInt(othersLeft)} pending; ${cpu.text}${complete ? '' : ' — DID NOT FINISH within the time bound'}`,
    );
  } finally {
    // Leave nothing behind on a shared server (a fresh database is dropped anyway).
    if (!ctx.databaseUrl) {
      await forEachLimited(options.otherConnections + 1, 8, async (k) => {
        const connectionId = k === options.otherConnections ? spec.targetConnectionId : `${spec.othersPrefix}${k}`;
        await client.call('removeAllMessages', { connectionId }, 30_000);
      }).catch(() => undefined);
    }
    await client.close();
  }
}
