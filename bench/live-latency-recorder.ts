/**
 * The open-loop live-delivery measurement shared by the single-instance (live-latency.ts) and cross-instance
 * (cluster.ts) scenarios, kept in one place so both figures are taken the same way: `sender` adds messages to
 * `connectionIds` on a fixed schedule, `holder` (holding their live sessions) is notified with messagesReceived
 * and acknowledges with removeMessages. Latency: the sender's addMessage → the holder's notification.
 */
import { randomUUID } from 'node:crypto';
import { forEachLimited, nowMs, sleep, waitUntil } from './async-utils';
import { JsonRpcWsClient } from '@didcomm-mpr/test-kit';
import { BenchContext } from './bench-context';
import { BENCH_RECIPIENT_DIDS_JSON } from './payload';
import { LatencySummary, summarize } from './stats';

interface ReceivedParams {
  connectionId: string;
  messages: { id: string }[];
}

export interface OpenLoopOptions {
  connectionIds: string[];
  ratePerSecond: number;
  /** Sent at the same rate before the measured part: acknowledged but not timed. */
  warmupMs: number;
  durationMs: number;
  messageId: (index: number) => string;
  /** Called as the first measured message is due, before its send time is taken. */
  onMeasuredStart?: () => void;
  /** Called once the adds and their notifications are in (bounded waits), before waiting for the acknowledgements. */
  beforeAcks?: () => Promise<void>;
}

export interface OpenLoopResult {
  /** Latency of every measured message notified once. */
  latencies: number[];
  latency: LatencySummary;
  addLatency: LatencySummary;
  /** Measured messages added (acknowledged by the sender) and notified on the holder. */
  added: number;
  notified: number;
  warmupCount: number;
  /** Measured messages due. */
  expected: number;
  /** Every message sent, warm-up included. */
  sent: number;
  addErrors: number;
  firstAddError: string | undefined;
  duplicates: number;
  maxLagMs: number;
  /** nowMs() at the first measured send (undefined when none was measured). */
  measuredStart: number | undefined;
  /** nowMs() as the schedule began. */
  start: number;
  sendSeconds: number;
  /** p99 latency of the messages sent in each second after `measuredStart`: tells a steady tail from a few stalls. */
  secondly: number[];
  ackErrors: number;
}

/**
 * Runs the schedule, then waits (bounded) for the adds, the notifications of the added messages and the
 * acknowledgements in flight, and removes the holder's notification handler.
 */
export async function runOpenLoop(ctx: BenchContext, holder: JsonRpcWsClient, sender: JsonRpcWsClient, options: OpenLoopOptions): Promise<OpenLoopResult> {
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
      const at = sentAt.get(message.id);
      if (at === undefined) continue;
      if (notified.has(message.id)) {
        duplicates++;
        continue;
      }
      notified.add(message.id);
      latencies.push(receivedAt - at);
      timeline.push([at, receivedAt - at]);
    }
    acksInFlight++;
    holder
      .call('removeMessages', { connectionId: params.connectionId, messageIds: ids }, 15_000)
      .catch(() => ackErrors++)
      .finally(() => acksInFlight--);
  };

  const rate = options.ratePerSecond;
  const warmupCount = Math.round((rate * options.warmupMs) / 1000);
  const total = warmupCount + Math.round((rate * options.durationMs) / 1000);
  const intervalMs = 1000 / rate;
  const prefixes = options.connectionIds.map((id) => `{"connectionId":${JSON.stringify(id)},"recipientDids":${BENCH_RECIPIENT_DIDS_JSON},"payload":`);
  const addLatencies: number[] = [];
  let added = 0;
  let addErrors = 0;
  let firstAddError: string | undefined;
  let maxLagMs = 0;
  let sent = 0;
  let measuredStart: number | undefined;
  const adds: Promise<void>[] = [];
  const start = nowMs();
  // Open loop: message i is due at start + i * interval, whether or not earlier adds were answered.
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = nowMs();
      const due = Math.min(total, Math.floor((now - start) / intervalMs) + 1);
      while (sent < due) {
        const i = sent++;
        const id = options.messageId(i);
        const params = `${prefixes[i % prefixes.length]}${ctx.payloads.take()},"messageId":"${id}"}`;
        const measured = i >= warmupCount;
        if (i === warmupCount) {
          options.onMeasuredStart?.();
          measuredStart = nowMs();
        }
        const at = nowMs();
        if (measured) {
          maxLagMs = Math.max(maxLagMs, at - (start + i * intervalMs));
          sentAt.set(id, at);
        }
        adds.push(
          sender.callJson('addMessage', params, 15_000).then(
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
      if (sent < total && sender.open) setTimeout(tick, Math.max(0, Math.min(1, start + sent * intervalMs - nowMs())));
      else resolve();
    };
    tick();
  });
  const sendSeconds = (nowMs() - (measuredStart ?? start)) / 1000;
  await Promise.race([Promise.all(adds), sleep(15_000)]);
  await waitUntil(() => notified.size >= added, 5_000, 'notifications').catch(() => undefined);
  await options.beforeAcks?.();
  await waitUntil(() => acksInFlight === 0, 10_000, 'acknowledgements').catch(() => undefined);
  holder.onNotification = undefined;

  const perSecond = new Map<number, number[]>();
  for (const [at, value] of timeline) {
    const second = Math.floor((at - (measuredStart ?? start)) / 1000);
    const values = perSecond.get(second) ?? [];
    values.push(value);
    perSecond.set(second, values);
  }
  return {
    latencies,
    latency: summarize(latencies),
    addLatency: summarize(addLatencies),
    added,
    notified: notified.size,
    warmupCount,
    expected: total - warmupCount,
    sent,
    addErrors,
    firstAddError,
    duplicates,
    maxLagMs,
    measuredStart,
    start,
    sendSeconds,
    secondly: [...perSecond.entries()].sort((a, b) => a[0] - b[0]).map(([, values]) => summarize(values).p99),
    ackErrors,
  };
}

/** Opens a live session on `holder` for each connection id (32 at a time); `where` qualifies the error (e.g. ' on A'). */
export async function holdLiveSessions(holder: JsonRpcWsClient, connectionIds: string[], where = ''): Promise<void> {
  await forEachLimited(connectionIds.length, 32, async (k) => {
    const ok = await holder.call<boolean>('addLiveSession', { connectionId: connectionIds[k], sessionId: randomUUID() });
    if (ok !== true) throw new Error(`addLiveSession${where} returned ${String(ok)}`);
  });
}

/** After a run, whatever happened: stops acknowledging, removes what is left for the connection ids, closes both sockets. */
export async function releaseLiveSessions(holder: JsonRpcWsClient, sender: JsonRpcWsClient, connectionIds: string[]): Promise<void> {
  holder.onNotification = undefined;
  await forEachLimited(connectionIds.length, 16, async (k) => {
    await sender.call('removeAllMessages', { connectionId: connectionIds[k] }, 30_000);
  }).catch(() => undefined);
  await Promise.all([holder.closeQuietly(), sender.closeQuietly()]);
}
