import { randomUUID } from 'node:crypto';
import { forEachLimited, nowMs, sleep, waitUntil } from '../async-utils';
import { BenchContext } from '../bench-context';
import { BENCH_RECIPIENT_DIDS_JSON } from '../payload';
import { CpuMeter } from '../process-stats';
import { RpcClient } from '../rpc-client';
import { formatInt, formatMs, summarize } from '../stats';

export interface LiveLatencyOptions {
  connections: number;
  ratePerSecond: number;
  durationMs: number;
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

    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
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
      }
      acksInFlight++;
      holder
        .call('removeMessages', { connectionId: params.connectionId, messageIds: ids }, 15_000)
        .catch(() => ackErrors++)
        .finally(() => acksInFlight--);
    };

    const total = Math.round((options.ratePerSecond * options.durationMs) / 1000);
    const intervalMs = 1000 / options.ratePerSecond;
    const prefixes = connectionIds.map((id) => `{"connectionId":${JSON.stringify(id)},"recipientDids":${BENCH_RECIPIENT_DIDS_JSON},"payload":`);
    const addLatencies: number[] = [];
    let added = 0;
    let addErrors = 0;
    let firstAddError: string | undefined;
    let maxLagMs = 0;
    let sent = 0;
    const adds: Promise<void>[] = [];
    const meter = new CpuMeter(ctx.serverPid);
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
          const at = nowMs();
          maxLagMs = Math.max(maxLagMs, at - (start + i * intervalMs));
          sentAt.set(id, at);
          adds.push(
            sender.callRaw('addMessage', params, 15_000).then(
              () => {
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
    const sendSeconds = (nowMs() - start) / 1000;
    await Promise.race([Promise.all(adds), sleep(15_000)]);
    await waitUntil(() => notified.size >= added, 5_000, 'notifications').catch(() => undefined);
    const cpu = meter.read();
    await waitUntil(() => acksInFlight === 0, 10_000, 'acknowledgements').catch(() => undefined);

    const latency = summarize(latencies);
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
      met: notified.size === added && added === total,
    });
    ctx.report.note(
      `live delivery: ${formatInt(sent)} adds sent in ${sendSeconds.toFixed(1)} s over ${options.connections} connections (max schedule lag ${formatMs(maxLagMs)}); ` +
        `addMessage ack p50 ${formatMs(addLatency.p50)} / p99 ${formatMs(addLatency.p99)}; ${addErrors} add errors${firstAddError ? ` (first: ${firstAddError})` : ''}, ` +
        `${duplicates} duplicate notifications, ${ackErrors} failed acks; ${cpu.text}`,
    );
  } finally {
    holder.onNotification = undefined;
    await forEachLimited(connectionIds.length, 16, async (k) => {
      await sender.call('removeAllMessages', { connectionId: connectionIds[k] }, 30_000);
    }).catch(() => undefined);
    await Promise.all([holder.close(), sender.close()]);
  }
}
