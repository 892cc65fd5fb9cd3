/**
 * The open-loop live-delivery measurement over WebSocket, shared by the single-instance and cross-instance (fleet)
 * scenarios so both figures are taken the same way: `sender` adds messages to `connectionIds` on a fixed schedule,
 * `holder` (holding their live sessions) is notified with messagesReceived and acknowledges with removeMessages.
 * Latency: the sender's addMessage → the holder's notification. The schedule and the recording are
 * load-loops.ts's, which the in-process peer is measured with too.
 */
import { randomUUID } from 'node:crypto';
import { forEachLimited } from './async-utils';
import { JsonRpcWsClient } from '@didcomm-mpr/test-kit';
import { BenchContext } from './bench-context';
import { DeliveryRecorder, OpenLoopResult, runSchedule, ScheduleOptions } from './load-loops';
import { BENCH_RECIPIENT_DIDS_JSON } from './payload';

interface ReceivedParams {
  connectionId: string;
  messages: { id: string }[];
}

export interface OpenLoopOptions extends ScheduleOptions {
  connectionIds: string[];
  messageId: (index: number) => string;
  /** Called as the first measured message is due, before its send time is taken. */
  onMeasuredStart?: () => void;
  /** Called once the adds and their notifications are in (bounded waits), before waiting for the acknowledgements. */
  beforeAcks?: () => Promise<void>;
}

/**
 * Runs the schedule, then waits (bounded) for the adds, the notifications of the added messages and the
 * acknowledgements in flight, and removes the holder's notification handler.
 */
export async function runOpenLoop(
  ctx: BenchContext,
  holder: JsonRpcWsClient,
  sender: JsonRpcWsClient,
  options: OpenLoopOptions,
): Promise<OpenLoopResult> {
  const recorder = new DeliveryRecorder<string>();
  holder.onNotification = (notification, receivedAt) => {
    if (notification.method !== 'messagesReceived') return;
    const params = notification.params as ReceivedParams;
    const ids = params.messages.map((message) => message.id);
    for (const id of ids) recorder.delivered(id, receivedAt);
    recorder.acknowledge(holder.call('removeMessages', { connectionId: params.connectionId, messageIds: ids }, 15_000));
  };
  const prefixes = options.connectionIds.map(
    (id) => `{"connectionId":${JSON.stringify(id)},"recipientDids":${BENCH_RECIPIENT_DIDS_JSON},"payload":`,
  );
  const run = await runSchedule(
    options,
    (i, measured, at) => {
      const id = options.messageId(i);
      const params = `${prefixes[i % prefixes.length]}${ctx.payloads.take()},"messageId":"${id}"}`;
      recorder.sent(id, at, sender.callJson('addMessage', params, 15_000), measured);
    },
    () => sender.open,
    options.onMeasuredStart,
  );
  await recorder.settle(options.beforeAcks);
  holder.onNotification = undefined;
  return recorder.result(run);
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
