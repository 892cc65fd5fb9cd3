import { JsonRpcWsClient, sql } from '@didcomm-mpr/test-kit';
import { tenantColumn } from '../bench-access';
import { BENCH_CLIENT, BenchContext } from '../bench-context';
import { holdLiveSessions, releaseLiveSessions, runOpenLoop } from '../live-latency-recorder';
import { formatInt, formatMs } from '../stats';
import { BENCH_RECIPIENT_DID } from '../payload';

export interface ExpirySweepOptions {
  /** Expired messages preloaded over `backlogConnections` connections, for the sweeper to delete. */
  backlog: number;
  backlogConnections: number;
  connections: number;
  ratePerSecond: number;
  durationMs: number;
  warmupMs: number;
}

async function remainingExpired(databaseUrl: string): Promise<number> {
  return (await sql<{ n: number }>(databaseUrl, 'SELECT count(*)::int AS n FROM queued_message WHERE expires_at <= now()'))[0].n;
}

/**
 * Live delivery while the expiry sweeper deletes a large backlog of expired messages (the server runs with
 * EXPIRY_SWEEP_INTERVAL_MS=1000 in the bench): the same open-loop measurement as "live delivery", so the two p99
 * figures of one run show what sweeping costs live traffic. Also reports how fast the backlog went.
 */
export async function expirySweep(ctx: BenchContext, options: ExpirySweepOptions): Promise<void> {
  const databaseUrl = ctx.databaseUrl;
  if (!databaseUrl) {
    ctx.report.note('expiry sweep skipped: it needs SQL access to preload expired messages');
    return;
  }
  // Inserted as the server would have stored them, with an expiry already in the past, plus their counters.
  const tenant = await tenantColumn(databaseUrl, ctx.tenant);
  await sql(
    databaseUrl,
    `INSERT INTO queued_message (${tenant.column}connection_id, id, recipient_dids, payload, payload_bytes, expires_at)
     SELECT ${tenant.value}$1 || (g % $2)::text, gen_random_uuid()::text, ARRAY[$3]::text[], $4, octet_length($4), now() - interval '1 minute'
     FROM generate_series(1, $5::int) AS g`,
    [`${ctx.runId}-expired-`, options.backlogConnections, BENCH_RECIPIENT_DID, ctx.payloads.texts[0], options.backlog],
  );
  await sql(
    databaseUrl,
    `INSERT INTO queue_usage AS u (${tenant.column}connection_id, messages, bytes)
     SELECT ${tenant.column}connection_id, count(*), sum(payload_bytes) FROM queued_message WHERE connection_id LIKE $1 GROUP BY ${tenant.column}connection_id
     ON CONFLICT (${tenant.column}connection_id) DO UPDATE SET messages = excluded.messages, bytes = excluded.bytes`,
    [`${ctx.runId}-expired-%`],
  );
  await sql(databaseUrl, 'ANALYZE queued_message');

  const connectionIds = Array.from({ length: options.connections }, (_, k) => `${ctx.runId}-expiry-live-${k}`);
  const holder = await JsonRpcWsClient.connect(ctx.wsUrl, BENCH_CLIENT);
  const sender = await JsonRpcWsClient.connect(ctx.wsUrl, BENCH_CLIENT);
  const started = Date.now();
  let sweptAtEnd = 0;
  try {
    await holdLiveSessions(holder, connectionIds);
    const run = await runOpenLoop(ctx, holder, sender, {
      connectionIds,
      ratePerSecond: options.ratePerSecond,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      messageId: (i) => `${ctx.runId}-expiry-msg-${i}`,
      beforeAcks: async () => {
        sweptAtEnd = options.backlog - (await remainingExpired(databaseUrl));
      },
    });
    const left = await remainingExpired(databaseUrl);
    ctx.report.add({
      name:
        `live delivery p99 at ${formatInt(options.ratePerSecond)} msg/s while the sweeper deletes expired messages ` +
        `(table: ${formatInt(options.backlog)} expired rows of ${formatInt(options.backlogConnections)} other connections, ANALYZEd; nothing else pending)`,
      value: formatMs(run.latency.p99),
    });
    ctx.report.add({
      name: 'expiry sweep: expired messages deleted during that live run',
      value: `${formatInt(sweptAtEnd)} of ${formatInt(options.backlog)}`,
    });
    ctx.report.note(
      `expiry sweep: ${formatInt(options.backlog)} expired messages over ${formatInt(options.backlogConnections)} connections, deleted by the sweeper ` +
        `(1,000 per statement, 20 ms apart) during ${((Date.now() - started) / 1000).toFixed(1)} s of live traffic (${formatInt(left)} left at the end); ` +
        `live p50 ${formatMs(run.latency.p50)} / p99 ${formatMs(run.latency.p99)} / max ${formatMs(run.latency.max)}; ` +
        `notified ${formatInt(run.notified)} of ${formatInt(run.added)}; ${run.addErrors} add errors; p99 per second: ${run.secondly.map((v) => v.toFixed(1)).join(', ')} ms`,
    );
  } finally {
    await releaseLiveSessions(holder, sender, connectionIds);
  }
}
