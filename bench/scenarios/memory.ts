import { randomUUID } from 'node:crypto';
import { ForcedGc, JsonRpcWsClient, openFilesLimit, rssKiB } from '@didcomm-mpr/test-kit';
import { forEachLimited, nowMs, sleep, waitUntil } from '../async-utils';
import { BENCH_CLIENT, BenchContext, liveSessionCount } from '../bench-context';
import { formatInt, formatMiB } from '../stats';

export interface MemoryOptions {
  sockets: number;
  sessionsOnOneSocket: number;
  targetKiBPerSession: number;
  /** Settle time before each reading (after which a full GC is forced when the inspector is reachable). */
  settleMs: number;
}

/** File descriptors the bench keeps for itself besides the sockets (stdio, pg, timers, the server pipes). */
const FD_HEADROOM = 256;

/**
 * Server memory per idle live session: RSS with no sockets, with N sockets holding one session each, and with
 * one socket holding M sessions. Each reading is taken after a settle and a forced full GC in the server.
 */
export async function memory(ctx: BenchContext, options: MemoryOptions, gc: ForcedGc): Promise<void> {
  const pid = ctx.serverPid;
  if (pid === undefined) throw new Error('memory figures need the server child pid');
  // Why a forced collection failed, if one did: the readings are then RSS after the settle alone, and the note says so.
  let notForced: string | undefined;
  const reading = async (): Promise<number> => {
    await sleep(options.settleMs);
    await gc.collect().catch((error: unknown) => {
      notForced ??= (error as Error).message;
    });
    await sleep(300);
    return rssKiB(pid);
  };

  // Sockets: each one is a file descriptor in the bench and another in the server.
  const limit = Math.min(openFilesLimit('self'), openFilesLimit(pid));
  let sockets = options.sockets;
  if (limit < sockets + FD_HEADROOM) {
    sockets = Math.max(100, Math.floor(limit - FD_HEADROOM));
    ctx.report.note(
      `memory: open-files limit is ${limit} (ulimit -n), so ${formatInt(sockets)} sockets instead of ${formatInt(options.sockets)}`,
    );
  }

  const baseline = await reading();
  ctx.report.add({ name: 'Server RSS, baseline (no sockets)', value: formatMiB(baseline) });

  const opened: JsonRpcWsClient[] = [];
  const started = nowMs();
  try {
    await forEachLimited(sockets, 64, async (i) => {
      const client = await JsonRpcWsClient.connect(ctx.wsUrl, BENCH_CLIENT);
      opened.push(client);
      const ok = await client.call<boolean>('addLiveSession', { connectionId: `${ctx.runId}-mem-${i}`, sessionId: randomUUID() }, 30_000);
      if (ok !== true) throw new Error(`addLiveSession returned ${String(ok)}`);
    });
    const openSeconds = (nowMs() - started) / 1000;
    const held = await liveSessionCount(ctx.httpBase);
    const withSockets = await reading();
    const perSession = (withSockets - baseline) / sockets;
    ctx.report.add({ name: `Server RSS, ${formatInt(sockets)} sockets × 1 live session`, value: formatMiB(withSockets) });
    ctx.report.add({
      name: 'Memory per idle session (one socket each)',
      value: `${perSession.toFixed(1)} KiB`,
      target: `≤ ${options.targetKiBPerSession} KiB`,
      met: perSession <= options.targetKiBPerSession && held === sockets,
    });
    ctx.report.note(
      `memory: opened ${formatInt(sockets)} sockets with a session each in ${openSeconds.toFixed(1)} s; the server reports ${formatInt(held)} live sessions`,
    );
  } finally {
    await forEachLimited(opened.length, 256, (i) => opened[i].closeQuietly());
  }
  await waitUntil(async () => (await liveSessionCount(ctx.httpBase)) === 0, 60_000, 'sessions ended after closing the sockets', 250);

  const baseline2 = await reading();
  ctx.report.add({ name: 'Server RSS, baseline again (sockets closed)', value: formatMiB(baseline2) });
  const client = await JsonRpcWsClient.connect(ctx.wsUrl, BENCH_CLIENT);
  try {
    const started2 = nowMs();
    await forEachLimited(options.sessionsOnOneSocket, 256, async (i) => {
      const ok = await client.call<boolean>('addLiveSession', { connectionId: `${ctx.runId}-mem1-${i}`, sessionId: `s${i}` }, 60_000);
      if (ok !== true) throw new Error(`addLiveSession returned ${String(ok)}`);
    });
    const registerSeconds = (nowMs() - started2) / 1000;
    const held = await liveSessionCount(ctx.httpBase);
    const withSessions = await reading();
    const perSession = (withSessions - baseline2) / options.sessionsOnOneSocket;
    ctx.report.add({
      name: `Server RSS, 1 socket × ${formatInt(options.sessionsOnOneSocket)} live sessions`,
      value: formatMiB(withSessions),
    });
    ctx.report.add({
      name: 'Memory per idle session (all on one socket)',
      value: `${perSession.toFixed(2)} KiB`,
      target: `≤ ${options.targetKiBPerSession} KiB`,
      met: perSession <= options.targetKiBPerSession && held === options.sessionsOnOneSocket,
    });
    ctx.report.note(
      `memory: ${formatInt(options.sessionsOnOneSocket)} addLiveSession on one socket (256 in flight) took ${registerSeconds.toFixed(1)} s ` +
        `(${formatInt(options.sessionsOnOneSocket / registerSeconds)}/s); the server reports ${formatInt(held)} live sessions`,
    );
  } finally {
    await client.closeQuietly();
  }
  await waitUntil(async () => (await liveSessionCount(ctx.httpBase)) === 0, 60_000, 'sessions ended after closing the socket', 250).catch(
    (error: unknown) => ctx.report.note(`memory: ${(error as Error).message}`),
  );
  ctx.report.note(
    notForced === undefined
      ? `memory: each RSS reading is VmRSS of the server process after ${options.settleMs / 1000} s idle and two forced full GCs (V8 inspector, HeapProfiler.collectGarbage)`
      : `memory: each RSS reading is VmRSS after ${options.settleMs / 1000} s idle (a forced GC through the inspector failed: ${notForced})`,
  );
}
