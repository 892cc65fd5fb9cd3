import { JsonRpcWsClient } from '@didcomm-mpr/test-kit';
import { forEachLimited, nowMs, sleep } from '../async-utils';
import { BENCH_CLIENT, BenchContext } from '../bench-context';
import { BENCH_RECIPIENT_DIDS_JSON } from '../payload';
import { CpuMeter } from '../cpu-meter';
import { formatInt, formatMs, summarize } from '../stats';

export interface AddThroughputOptions {
  clients: number;
  warmupMs: number;
  measureMs: number;
  /** Connection ids the adds are spread over (message i of client c goes to id (c + i) mod this). */
  connections: number;
  target?: number;
}

/**
 * Closed-loop addMessage throughput: each client has its own socket and sends its next add only when the
 * previous one was acknowledged (i.e. committed). Only replies arriving inside the measurement window count.
 */
export async function addThroughput(ctx: BenchContext, options: AddThroughputOptions): Promise<number> {
  const connectionIds = Array.from({ length: options.connections }, (_, k) => `${ctx.runId}-add${options.clients}-${k}`);
  const prefixes = connectionIds.map((id) => `{"connectionId":${JSON.stringify(id)},"recipientDids":${BENCH_RECIPIENT_DIDS_JSON},"payload":`);
  const clients = await Promise.all(Array.from({ length: options.clients }, () => JsonRpcWsClient.connect(ctx.wsUrl, BENCH_CLIENT)));
  const latencies: number[] = [];
  let counted = 0;
  let errors = 0;
  let firstError: string | undefined;
  const start = nowMs();
  const windowStart = start + options.warmupMs;
  const end = windowStart + options.measureMs;
  let meter: CpuMeter | undefined;
  const meterTimer = setTimeout(() => (meter = new CpuMeter(ctx.serverPid)), options.warmupMs);
  try {
    await Promise.all(
      clients.map(async (client, c) => {
        for (let i = 0; nowMs() < end && errors < 100; i++) {
          const params = prefixes[(c + i) % prefixes.length] + ctx.payloads.take() + '}';
          const sentAt = nowMs();
          try {
            await client.callJson('addMessage', params, 15_000);
          } catch (error) {
            errors++;
            firstError ??= (error as Error).message;
            if (!client.open) return;
            continue;
          }
          const doneAt = nowMs();
          if (doneAt >= windowStart && doneAt <= end) {
            counted++;
            latencies.push(doneAt - sentAt);
          }
        }
      }),
    );
  } finally {
    clearTimeout(meterTimer);
  }
  const cpu = meter?.read();
  const rate = counted / (options.measureMs / 1000);
  const latency = summarize(latencies);
  ctx.report.add({
    name: `addMessage throughput, ${options.clients} client${options.clients > 1 ? 's' : ''}`,
    value: `${formatInt(rate)} msg/s${errors > 0 ? ` (${errors} errors)` : ''}`,
    target: options.target ? `≥ ${formatInt(options.target)} msg/s` : undefined,
    met: options.target ? rate >= options.target && errors === 0 : undefined,
  });
  ctx.report.note(
    `addMessage ×${options.clients} clients: ${formatInt(counted)} acks in ${options.measureMs / 1000} s ` +
      `(after ${options.warmupMs / 1000} s warm-up), ack latency p50 ${formatMs(latency.p50)} / p99 ${formatMs(latency.p99)} / max ${formatMs(latency.max)}; ` +
      `${errors} errors${firstError ? ` (first: ${firstError})` : ''}; ${cpu?.text ?? ''}`,
  );

  // Leave the queue as it was: the later scenarios measure on their own data.
  await forEachLimited(connectionIds.length, 8, async (k) => {
    await clients[k % clients.length].call('removeAllMessages', { connectionId: connectionIds[k] }, 60_000);
  }).catch((error: unknown) => ctx.report.note(`cleanup after addMessage ×${options.clients} failed: ${(error as Error).message}`));
  await Promise.all(clients.map((client) => client.closeQuietly()));
  await sleep(200);
  return rate;
}
