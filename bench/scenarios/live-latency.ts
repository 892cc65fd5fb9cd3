import { JsonRpcWsClient } from '@didcomm-mpr/test-kit';
import { BENCH_CLIENT, BenchContext } from '../bench-context';
import { CpuMeter } from '../cpu-meter';
import { holdLiveSessions, releaseLiveSessions, runOpenLoop } from '../live-latency-recorder';
import { readEventLoopWindow, startEventLoopWindow } from '../server-metrics';
import { formatInt, formatMs } from '../stats';

export interface LiveLatencyOptions {
  connections: number;
  ratePerSecond: number;
  durationMs: number;
  /** Sent at the same rate before the measured part and left out of the figures (JIT, pool, plans). */
  warmupMs: number;
  targetP99Ms: number;
}

/**
 * Live-delivery latency: socket A holds the live sessions of `connections` connection ids and acknowledges
 * what it is notified of (removeMessages); socket B adds messages to them on an open-loop schedule. Latency is
 * from B's send of addMessage to A's receipt of the messagesReceived notification carrying that id.
 */
export async function liveLatency(ctx: BenchContext, options: LiveLatencyOptions): Promise<void> {
  const connectionIds = Array.from({ length: options.connections }, (_, k) => `${ctx.runId}-live-${k}`);
  const holder = await JsonRpcWsClient.connect(ctx.wsUrl, BENCH_CLIENT);
  const sender = await JsonRpcWsClient.connect(ctx.wsUrl, BENCH_CLIENT);
  try {
    await holdLiveSessions(holder, connectionIds);

    let measuredStartWall = '';
    let meter: CpuMeter | undefined;
    let cpu: ReturnType<CpuMeter['read']> | undefined;
    let eventLoop: Awaited<ReturnType<typeof readEventLoopWindow>> | undefined;
    const run = await runOpenLoop(ctx, holder, sender, {
      connectionIds,
      ratePerSecond: options.ratePerSecond,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      messageId: (i) => `${ctx.runId}-live-msg-${i}`,
      onMeasuredStart: () => {
        void startEventLoopWindow(ctx.httpBase);
        meter = new CpuMeter(ctx.serverPid);
        measuredStartWall = new Date().toISOString();
      },
      beforeAcks: async () => {
        cpu = meter?.read();
        eventLoop = await readEventLoopWindow(ctx.httpBase);
      },
    });
    const { latency, addLatency, added, notified, warmupCount, sent, secondly } = run;
    const over = run.latencies.filter((value) => value > options.targetP99Ms).length;
    ctx.report.add({
      name: `Live delivery latency p50 (${formatInt(options.ratePerSecond)} msg/s)`,
      value: formatMs(latency.p50),
    });
    ctx.report.add({
      name: `Live delivery latency p99 (${formatInt(options.ratePerSecond)} msg/s)`,
      value: formatMs(latency.p99),
      target: `≤ ${options.targetP99Ms} ms`,
      met: latency.p99 <= options.targetP99Ms && notified === added,
    });
    ctx.report.add({ name: 'Live delivery latency max', value: formatMs(latency.max) });
    ctx.report.add({
      name: 'Live delivery: notified / added',
      value: `${formatInt(notified)} / ${formatInt(added)}`,
      target: 'all',
      met: notified === added && added === run.expected,
    });
    ctx.report.note(
      `live delivery: ${formatInt(sent - warmupCount)} adds measured over ${run.sendSeconds.toFixed(1)} s, after ${options.warmupMs / 1000} s of warm-up at the same rate, ` +
        `to ${options.connections} connections (max schedule lag ${formatMs(run.maxLagMs)}); ` +
        `addMessage ack p50 ${formatMs(addLatency.p50)} / p99 ${formatMs(addLatency.p99)}; ${run.addErrors} add errors${run.firstAddError ? ` (first: ${run.firstAddError})` : ''}, ` +
        `${run.duplicates} duplicate notifications, ${run.ackErrors} failed acks; ${formatInt(over)} notifications over ${options.targetP99Ms} ms; ` +
        `p99 per second of the run (from ${measuredStartWall}): ${secondly.map((value) => value.toFixed(1)).join(', ')} ms; ` +
        `server event-loop delay (prom-client, 10 ms ticks) ${eventLoop ? `p99 ${formatMs(eventLoop.p99Ms)} / max ${formatMs(eventLoop.maxMs)}` : 'n/a'}; ${cpu?.text ?? ''}`,
    );
  } finally {
    await releaseLiveSessions(holder, sender, connectionIds);
  }
}
