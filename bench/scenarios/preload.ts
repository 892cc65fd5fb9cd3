import { Client } from 'pg';
import { JsonRpcWsClient } from '@didcomm-mpr/test-kit';
import { nowMs } from '../async-utils';
import { tenantColumn } from '../bench-access';
import { BENCH_CLIENT, BenchContext } from '../bench-context';
import { BENCH_RECIPIENT_DID, BENCH_RECIPIENT_DIDS_JSON } from '../payload';

export interface BacklogSpec {
  /** The connection that will be drained. */
  targetConnectionId: string;
  targetMessages: number;
  /** Other connections `${othersPrefix}${k}`, k < otherConnections, holding `otherMessages` in total. */
  othersPrefix: string;
  otherConnections: number;
  otherMessages: number;
}

/**
 * Row g of the backlog (0-based): even rows go to the target, odd rows round-robin over the others, so both
 * are interleaved in arrival order (seq) and in the heap, as a real backlog would be.
 */
function connectionOf(spec: BacklogSpec, g: number): string {
  return g % 2 === 0 ? spec.targetConnectionId : `${spec.othersPrefix}${Math.floor(g / 2) % spec.otherConnections}`;
}

/**
 * Preloads by SQL into queued_message with the columns the server's insertMany writes (state defaults to 0 =
 * pending, seq and received_at to their defaults, expiry as MESSAGE_TTL_MS's default would set it). Only the drain is measured, so the fastest path is fine.
 */
export async function preloadBySql(ctx: BenchContext, databaseUrl: string, spec: BacklogSpec): Promise<number> {
  if (spec.targetMessages !== spec.otherMessages) throw new Error('the SQL preload interleaves 1:1');
  const started = nowMs();
  const tenant = await tenantColumn(databaseUrl, ctx.tenant);
  const client = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000, statement_timeout: 120_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const rows = spec.targetMessages * 2;
    const chunk = 20_000;
    const payloads = ctx.payloads.texts;
    for (let from = 0; from < rows; from += chunk) {
      await client.query(
        `INSERT INTO queued_message (${tenant.column}connection_id, id, recipient_dids, payload, payload_bytes, expires_at)
         SELECT ${tenant.value}CASE WHEN g % 2 = 0 THEN $1 ELSE $2 || ((g / 2) % $3)::text END,
                gen_random_uuid()::text,
                ARRAY[$4]::text[],
                ($5::text[])[1 + g % $6],
                octet_length(($5::text[])[1 + g % $6]),
                now() + interval '7 days'
         FROM generate_series($7::int, $8::int) AS g`,
        [spec.targetConnectionId, spec.othersPrefix, spec.otherConnections, BENCH_RECIPIENT_DID, payloads, payloads.length, from, Math.min(rows, from + chunk) - 1],
      );
    }
    // The counters the server keeps beside the queue (its quota check reads them).
    await client.query(
      `INSERT INTO queue_usage AS u (${tenant.column}connection_id, messages, bytes)
       SELECT ${tenant.column}connection_id, count(*), sum(payload_bytes) FROM queued_message GROUP BY ${tenant.column}connection_id
       ON CONFLICT (${tenant.column}connection_id) DO UPDATE SET messages = excluded.messages, bytes = excluded.bytes`,
    );
    // A backlog this size would have been analysed by autovacuum long before anyone drains it.
    await client.query('ANALYZE queued_message');
  } finally {
    await client.end().catch(() => undefined);
  }
  return (nowMs() - started) / 1000;
}

/** Preloads through addMessage (for BENCH_URL, where the bench has no SQL access): batches from many sockets. */
export async function preloadByRpc(ctx: BenchContext, spec: BacklogSpec): Promise<number> {
  const started = nowMs();
  const rows = spec.targetMessages + spec.otherMessages;
  const batch = 100;
  // Recording: each batch's reply (an array, answering no call of the client) is read back from the recorded frames.
  const clients = await Promise.all(Array.from({ length: 16 }, () => JsonRpcWsClient.connect(ctx.wsUrl, { ...BENCH_CLIENT, record: true })));
  try {
    const batches = Math.ceil(rows / batch);
    // One batch in flight per socket, so each array reply belongs to the batch its socket sent.
    await Promise.all(
      clients.map(async (client, lane) => {
        for (let b = lane; b < batches; b += clients.length) {
          const entries: string[] = [];
          for (let g = b * batch; g < Math.min(rows, (b + 1) * batch); g++) {
            entries.push(
              `{"jsonrpc":"2.0","id":${g},"method":"addMessage","params":{"connectionId":${JSON.stringify(connectionOf(spec, g))},` +
                `"recipientDids":${BENCH_RECIPIENT_DIDS_JSON},"payload":${ctx.payloads.take()}}}`,
            );
          }
          await sendBatch(client, `[${entries.join(',')}]`);
        }
      }),
    );
  } finally {
    await Promise.all(clients.map((client) => client.closeQuietly()));
  }
  return (nowMs() - started) / 1000;
}

/** Sends one JSON-RPC batch frame and waits for its (array) reply; fails if any entry failed. */
async function sendBatch(client: JsonRpcWsClient, frame: string): Promise<void> {
  const reply = await client.sendRaw(frame, 60_000);
  if (!Array.isArray(reply)) throw new Error(`not a batch reply: ${JSON.stringify(reply).slice(0, 200)}`);
  const failed = (reply as { error?: { message: string } }[]).find((entry) => entry.error);
  if (failed?.error) throw new Error(failed.error.message);
}
