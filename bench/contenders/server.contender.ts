import { JsonRpcWsClient, RpcCallError, ServerProcess, sql } from '@didcomm-mpr/test-kit';
import { forEachLimited, nowMs, sleep } from '../async-utils';
import { backlogArrivalOrder, BacklogSpec } from '../backlog';
import { tenantColumn } from '../bench-access';
import { BENCH_CLIENT, BenchContext } from '../bench-context';
import { holdLiveSessions, releaseLiveSessions, runOpenLoop } from '../live-latency-recorder';
import { closedLoop, ClosedLoopResult, drainLoop, DrainResult, OpenLoopResult, ScheduleOptions } from '../load-loops';
import { BENCH_RECIPIENT_DID, BENCH_RECIPIENT_DIDS_JSON } from '../payload';
import { EventLoopDelay, readEventLoopWindow, startEventLoopWindow } from '../server-metrics';
import { formatMs } from '../stats';
import { Contender, LoadResult, SEED_CHUNK } from './contender';

/** Sockets the backlog arrives on, one JSON-RPC batch of 100 addMessage in flight on each. */
const LOAD_SOCKETS = 16;
const LOAD_BATCH = 100;
const DRAIN_BATCH = 100;

/**
 * This server, as a mediator reaches it: a child process (the build under test) driven over loopback WebSockets,
 * one socket per caller, through its JSON-RPC API only. Its table is read (statistics, what to empty) and vacuumed
 * by SQL, never written.
 */
export class ServerContender implements Contender {
  readonly name = 'server' as const;
  readonly table = 'queued_message';
  readonly description: string;
  private liveRuns = 0;

  constructor(
    private readonly ctx: BenchContext,
    private readonly server: ServerProcess,
    readonly databaseUrl: string,
    entry: string,
  ) {
    this.description = `${entry} as a child process (pid ${server.pid}), LOG_LEVEL=warn, driven over loopback WebSockets (one socket per caller)`;
  }

  get pid(): number {
    return this.server.pid;
  }

  /** Every connection's messages removed through removeAllMessages (the queue counters stay the server's own). */
  async empty(): Promise<void> {
    const rows = await sql<{ connection_id: string }>(this.databaseUrl, 'SELECT DISTINCT connection_id FROM queued_message');
    const clients = await Promise.all(Array.from({ length: 8 }, () => JsonRpcWsClient.connect(this.ctx.wsUrl, BENCH_CLIENT)));
    try {
      await forEachLimited(rows.length, 16, async (k) => {
        await callRetrying(clients[k % clients.length], 'removeAllMessages', { connectionId: rows[k].connection_id });
      });
    } finally {
      await Promise.all(clients.map((client) => client.closeQuietly()));
    }
    await this.vacuum(true);
  }

  async vacuum(analyze: boolean): Promise<void> {
    await sql(this.databaseUrl, analyze ? 'VACUUM (ANALYZE) queued_message' : 'VACUUM queued_message');
  }

  async add(callers: number, connectionIds: string[], warmupMs: number, measureMs: number): Promise<ClosedLoopResult> {
    const prefixes = connectionIds.map(
      (id) => `{"connectionId":${JSON.stringify(id)},"recipientDids":${BENCH_RECIPIENT_DIDS_JSON},"payload":`,
    );
    const clients = await Promise.all(Array.from({ length: callers }, () => JsonRpcWsClient.connect(this.ctx.wsUrl, BENCH_CLIENT)));
    try {
      return await closedLoop({ callers, warmupMs, measureMs }, async (caller, i) => {
        if (!clients[caller].open) throw new Error('socket closed');
        await clients[caller].callJson('addMessage', prefixes[(caller + i) % prefixes.length] + this.ctx.payloads.take() + '}', 15_000);
      });
    } finally {
      await Promise.all(clients.map((client) => client.closeQuietly()));
      await sleep(200);
    }
  }

  /** JSON-RPC batches of 100 addMessage from 16 sockets, one batch in flight on each. */
  async load(spec: BacklogSpec): Promise<LoadResult> {
    const order = backlogArrivalOrder(spec);
    const started = nowMs();
    // Recording: each batch's reply (an array, answering no call of the client) is read back from the recorded frames.
    const clients = await Promise.all(
      Array.from({ length: LOAD_SOCKETS }, () => JsonRpcWsClient.connect(this.ctx.wsUrl, { ...BENCH_CLIENT, record: true })),
    );
    try {
      const batches = Math.ceil(order.length / LOAD_BATCH);
      await Promise.all(
        clients.map(async (client, lane) => {
          for (let b = lane; b < batches; b += clients.length) {
            const entries: string[] = [];
            for (let g = b * LOAD_BATCH; g < Math.min(order.length, (b + 1) * LOAD_BATCH); g++) {
              entries.push(
                `{"jsonrpc":"2.0","id":${g},"method":"addMessage","params":{"connectionId":${JSON.stringify(order[g])},` +
                  `"recipientDids":${BENCH_RECIPIENT_DIDS_JSON},"payload":${this.ctx.payloads.take()}}}`,
              );
            }
            await sendBatch(client, `[${entries.join(',')}]`);
          }
        }),
      );
    } finally {
      await Promise.all(clients.map((client) => client.closeQuietly()));
    }
    const seconds = (nowMs() - started) / 1000;
    return {
      rows: order.length,
      seconds,
      rate: order.length / seconds,
      how: `JSON-RPC batches of ${LOAD_BATCH} addMessage, ${LOAD_SOCKETS} sockets`,
    };
  }

  /**
   * The columns the server's insert writes (state, seq and received_at by their defaults, the expiry MESSAGE_TTL_MS's
   * default would give), in arrival order, and the counters beside the queue that its quota check reads.
   */
  async seed(spec: BacklogSpec): Promise<LoadResult> {
    const order = backlogArrivalOrder(spec);
    const texts = this.ctx.payloads.texts;
    const started = nowMs();
    // The tenant the bench's sockets speak for (a build from before tenants has no such column).
    const tenant = await tenantColumn(this.databaseUrl, this.ctx.tenant);
    for (let from = 0; from < order.length; from += SEED_CHUNK) {
      await sql(
        this.databaseUrl,
        `INSERT INTO queued_message (${tenant.column}connection_id, id, recipient_dids, payload, payload_bytes, expires_at)
         SELECT ${tenant.value}c, gen_random_uuid()::text, ARRAY[$2]::text[], ($3::text[])[1 + (g + $5) % $4], octet_length(($3::text[])[1 + (g + $5) % $4]), now() + interval '7 days'
         FROM unnest($1::text[]) WITH ORDINALITY AS t(c, g) ORDER BY g`,
        [order.slice(from, from + SEED_CHUNK), BENCH_RECIPIENT_DID, texts, texts.length, from],
      );
    }
    await sql(
      this.databaseUrl,
      `INSERT INTO queue_usage (${tenant.column}connection_id, messages, bytes)
       SELECT ${tenant.column}connection_id, count(*), sum(payload_bytes) FROM queued_message GROUP BY ${tenant.column}connection_id
       ON CONFLICT (${tenant.column}connection_id) DO UPDATE SET messages = excluded.messages, bytes = excluded.bytes`,
    );
    const seconds = (nowMs() - started) / 1000;
    return { rows: order.length, seconds, rate: order.length / seconds, how: "SQL in the server's row format, its queue counters set" };
  }

  async removeConnection(connectionId: string): Promise<void> {
    const client = await JsonRpcWsClient.connect(this.ctx.wsUrl, BENCH_CLIENT);
    try {
      await callRetrying(client, 'removeAllMessages', { connectionId });
    } finally {
      await client.closeQuietly();
    }
  }

  async drain(connectionId: string, expected: number, maxMs: number): Promise<DrainResult> {
    const client = await JsonRpcWsClient.connect(this.ctx.wsUrl, BENCH_CLIENT);
    const takeParams = JSON.stringify({ connectionId, limit: DRAIN_BATCH });
    try {
      return await drainLoop(
        { expected, maxMs },
        async () => (await client.callJson<{ id: string }[]>('takeFromQueue', takeParams, 30_000)).map((message) => message.id),
        async (ids) => {
          await client.call('removeMessages', { connectionId, messageIds: ids }, 30_000);
        },
      );
    } finally {
      await client.closeQuietly();
    }
  }

  async live(connectionIds: string[], schedule: ScheduleOptions): Promise<OpenLoopResult> {
    const run = ++this.liveRuns;
    const holder = await JsonRpcWsClient.connect(this.ctx.wsUrl, BENCH_CLIENT);
    const sender = await JsonRpcWsClient.connect(this.ctx.wsUrl, BENCH_CLIENT);
    try {
      await holdLiveSessions(holder, connectionIds);
      let eventLoop: EventLoopDelay | undefined;
      const result = await runOpenLoop(this.ctx, holder, sender, {
        ...schedule,
        connectionIds,
        messageId: (i) => `${this.ctx.runId}-live${run}-${i}`,
        onMeasuredStart: () => void startEventLoopWindow(this.ctx.httpBase),
        beforeAcks: async () => {
          eventLoop = await readEventLoopWindow(this.ctx.httpBase);
        },
      });
      if (eventLoop)
        this.ctx.report.note(
          `server live run ${run}: the server's event-loop delay (prom-client, 10 ms ticks) p99 ${formatMs(eventLoop.p99Ms)} / max ${formatMs(eventLoop.maxMs)}`,
        );
      return result;
    } finally {
      await releaseLiveSessions(holder, sender, connectionIds);
    }
  }

  async close(): Promise<void> {
    // The server child is stopped by run.ts's cleanup, with the rest of what it started.
  }
}

/**
 * A call that the server may answer "retry later" (e.g. storage unavailable while PostgreSQL catches up after a
 * heavy scenario on a busy machine): retried for up to a minute, as a mediator would, between figures only.
 */
async function callRetrying(client: JsonRpcWsClient, method: string, params: unknown): Promise<unknown> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await client.call(method, params, 60_000);
    } catch (error) {
      if (!(error instanceof RpcCallError && error.retryable) || Date.now() > deadline) throw error;
      await sleep(1_000);
    }
  }
}

/** Sends one JSON-RPC batch frame and waits for its (array) reply; fails if any entry failed. */
async function sendBatch(client: JsonRpcWsClient, frame: string): Promise<void> {
  const reply = await client.sendRaw(frame, 60_000);
  if (!Array.isArray(reply)) throw new Error(`not a batch reply: ${JSON.stringify(reply).slice(0, 200)}`);
  const failed = (reply as { error?: { message: string } }[]).find((entry) => entry.error);
  if (failed?.error) throw new Error(failed.error.message);
}
