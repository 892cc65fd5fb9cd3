import { randomUUID } from 'node:crypto';
import { forEachLimited, nowMs, sleep, waitUntil } from '../async-utils';
import { BenchContext } from '../bench-context';
import { BENCH_RECIPIENT_DIDS_JSON } from '../payload';
import { CpuMeter } from '../process-stats';
import { RpcClient } from '../rpc-client';
import { readEventLoopWindow, startEventLoopWindow } from '../server-metrics';
import { formatInt, formatMs, summarize } from '../stats';

export interface LiveLatencyOptions {
  connections: number;
  ratePerSecond: number;
  durationMs: number;
  /** Sent at the same rate before the measured part and left out of the figures (JIT, pool, plans). */
  warmupMs: number;
  targetP99Ms: number;
}

interface ReceivedParams {
  connectionId: string;
  messages: { id: string }[];
}

/**
 * Live-delivery latency: socket A holds the live sessions of `connections` connection ids and acknowledges
 * what it is notified of (removeMessages); socket B adds messages to them on an open-loop schedule. Latency is
 * from B's send of addMessage to A's receipt of the messagesReceived notification carrying that id.
 */
export async function liveLatency(ctx: BenchContext, options: LiveLatencyOptions): Promise<void> {
  const connectionIds = Array.from({ length: options.connections }, (_, k) => `${ctx.runId}-live-${k}`);
  const holder = await RpcClient.connect(ctx.wsUrl);
  const sender = await RpcClient.connect(ctx.wsUrl);
  try {
    await forEachLimited(connectionIds.length, 32, async (k) => {
      const ok = await holder.call<boolean>('addLiveSession', { connectionId: connectionIds[k], sessionId: randomUUID() });
      if (ok !== true) throw new Error(`addLiveSession returned ${String(ok)}`);
    });

    /** Send time of each measured message (warm-up messages are acknowledged but not timed). */
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    /** [send time, latency] per notified message, for the per-second breakdown. */
    const timeline: [number, number][] = [];
    const notified = new Set<string>();
    let duplicates = 0;
    let ackErrors = 0;
    let acksInFlight = 0;
    holder.onNotification = (notification, receivedAt) => {
      if (notification.method !== 'messagesReceived') return;
      const params = notification.params as ReceivedParams;
      const ids: string[] = [];
      for (const message of params.messages) {
        ids.push(message.id);
        const sent = sentAt.get(message.id);
        if (sent === undefined) continue;
        if (notified.has(message.id)) {
          duplicates++;
          continue;
        }
        notified.add(message.id);
        latencies.push(receivedAt - sent);
        timeline.push([sent, receivedAt - sent]);
      }
      acksInFlight++;
      holder
        .call('removeMessages', { connectionId: params.connectionId, messageIds: ids }, 15_000)
        .catch(() => ackErrors++)
        .finally(() => acksInFlight--);
    };

    const warmupCount = Math.round((options.ratePerSecond * options.warmupMs) / 1000);
    const total = warmupCount + Math.round((options.ratePerSecond * options.durationMs) / 1000);
    const intervalMs = 1000 / options.ratePerSecond;
    const prefixes = connectionIds.map((id) => `{"connectionId":${JSON.stringify(id)},"recipientDids":${BENCH_RECIPIENT_DIDS_JSON},"payload":`);
    const addLatencies: number[] = [];
    let added = 0;
    let measuredStart = 0;
    let measuredStartWall = '';
    let addErrors = 0;
    let firstAddError: string | undefined;
    let maxLagMs = 0;
    let sent = 0;
    const adds: Promise<void>[] = [];
    let meter: CpuMeter | undefined;
    const start = nowMs();
    // Open loop: message i is due at start + i * interval, whether or not earlier adds were answered.
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = nowMs();
        const due = Math.min(total, Math.floor((now - start) / intervalMs) + 1);
        while (sent < due) {
          const i = sent++;
          const id = `${ctx.runId}-live-msg-${i}`;
          const params = `${prefixes[i % prefixes.length]}${ctx.payloads.take()},"messageId":"${id}"}`;
          const measured = i >= warmupCount;
          if (i === warmupCount) {
            void startEventLoopWindow(ctx.httpBase);
            meter = new CpuMeter(ctx.serverPid);
            measuredStart = nowMs();
            measuredStartWall = new Date().toISOString();
          }
          const at = nowMs();
          if (measured) {
            maxLagMs = Math.max(maxLagMs, at - (start + i * intervalMs));
            sentAt.set(id, at);
          }
          adds.push(
            sender.callRaw('addMessage', params, 15_000).then(
              () => {
                if (!measured) return;
                added++;
                addLatencies.push(nowMs() - at);
              },
              (error: unknown) => {
                addErrors++;
                firstAddError ??= (error as Error).message;
              },
            ),
          );
        }
        if (sent < total && sender.isOpen) setTimeout(tick, Math.max(0, Math.min(1, start + sent * intervalMs - nowMs())));
        else resolve();
      };
      tick();
    });
    const sendSeconds = (nowMs() - measuredStart) / 1000;
    await Promise.race([Promise.all(adds), sleep(15_000)]);
    await waitUntil(() => notified.size >= added, 5_000, 'notifications').catch(() => undefined);
    const cpu = meter?.read();
    const eventLoop = await readEventLoopWindow(ctx.httpBase);
    await waitUntil(() => acksInFlight === 0, 10_000, 'acknowledgements').catch(() => undefined);

    const latency = summarize(latencies);
    // Per-second p99 of the send schedule: tells a steady tail from a few stalls.
    const perSecond = new Map<number, number[]>();
    for (const [at, value] of timeline) {
      const second = Math.floor((at - measuredStart) / 1000);
      perSecond.set(second, [...(perSecond.get(second) ?? []), value]);
    }
    const secondly = [...perSecond.entries()].sort((a, b) => a[0] - b[0]).map(([, values]) => summarize(values).p99);
    const over = latencies.filter((value) => value > options.targetP99Ms).length;
    const addLatency = summarize(addLatencies);
    ctx.report.add({
      name: `Live delivery latency p50 (${formatInt(options.ratePerSecond)} msg/s)`,
      value: formatMs(latency.p50),
    });
    ctx.report.add({
      name: `Live delivery latency p99 (${formatInt(options.ratePerSecond)} msg/s)`,
      value: formatMs(latency.p99),
      target: `≤ ${options.targetP99Ms} ms`,
      met: latency.p99 <= options.targetP99Ms && notified.size === added,
    });
    ctx.report.add({ name: 'Live delivery latency max', value: formatMs(latency.max) });
    ctx.report.add({
      name: 'Live delivery: notified / added',
      value: `${formatInt(notified.size)} / ${formatInt(added)}`,
      target: 'all',
      met: notified.size === added && added === total - warmupCount,
    });
    ctx.report.note(
      `live delivery: ${formatInt(sent - warmupCount)} adds measured over ${sendSeconds.toFixed(1)} s, after ${options.warmupMs / 1000} s of warm-up at the same rate, ` +
        `to ${options.connections} connections (max schedule lag ${formatMs(maxLagMs)}); ` +
        `addMessage ack p50 ${formatMs(addLatency.p50)} / p99 ${formatMs(addLatency.p99)}; ${addErrors} add errors${firstAddError ? ` (first: ${firstAddError})` : ''}, ` +
        `${duplicates} duplicate notifications, ${ackErrors} failed acks; ${formatInt(over)} notifications over ${options.targetP99Ms} ms; ` +
        `p99 per second of the run (from ${measuredStartWall}): ${secondly.map((value) => value.toFixed(1)).join(', ')} ms; ` +
        `server event-loop delay (prom-client, 10 ms ticks) ${eventLoop ? `p99 ${formatMs(eventLoop.p99Ms)} / max ${formatMs(eventLoop.maxMs)}` : 'n/a'}; ${cpu?.text ?? ''}`,
    );
  } finally {
    holder.onNotification = undefined;
    await forEachLimited(connectionIds.length, 16, async (k) => {
      await sender.call('removeAllMessages', { connectionId: connectionIds[k] }, 30_000);
    }).catch(() => undefined);
    await Promise.all([holder.close(), sender.close()]);
  }
}
