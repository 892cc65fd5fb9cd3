/**
 * The measurement loops every contender is driven with, whatever it is called through (the server over WebSocket,
 * raw PostgreSQL through `pg`, the in-process peer inside its own process): a closed loop of callers, a drain of one
 * queue, and an open-loop schedule with a delivery recorder. One implementation, so that a figure means the same
 * thing in every column. No I/O here: the caller passes what one call does.
 */
import { nowMs, sleep } from './async-utils';
import { LatencySummary, summarize } from './stats';

export interface ClosedLoopOptions {
  callers: number;
  /** Calls before the window are made but not counted (JIT, pools, plans). */
  warmupMs: number;
  measureMs: number;
  /** Stop after this many failed calls (a broken contender must not spin for the whole window). */
  maxErrors?: number;
}

export interface ClosedLoopResult {
  /** Calls answered inside the measurement window. */
  completed: number;
  /** completed per second of the window. */
  rate: number;
  latency: LatencySummary;
  errors: number;
  firstError: string | undefined;
}

/**
 * `callers` loops, each making its next call only when the previous one was answered (for a queue: committed).
 * Only answers arriving inside the window count, with their latency.
 */
export async function closedLoop(
  options: ClosedLoopOptions,
  call: (caller: number, index: number) => Promise<unknown>,
  onWindowStart?: () => void,
): Promise<ClosedLoopResult> {
  const latencies: number[] = [];
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  const maxErrors = options.maxErrors ?? 100;
  const windowStart = nowMs() + options.warmupMs;
  const end = windowStart + options.measureMs;
  const windowTimer = onWindowStart ? setTimeout(onWindowStart, options.warmupMs) : undefined;
  try {
    await Promise.all(
      Array.from({ length: options.callers }, async (_, caller) => {
        for (let i = 0; nowMs() < end && errors < maxErrors; i++) {
          const sentAt = nowMs();
          try {
            await call(caller, i);
          } catch (error) {
            errors++;
            firstError ??= (error as Error).message;
            continue;
          }
          const doneAt = nowMs();
          if (doneAt >= windowStart && doneAt <= end) {
            completed++;
            latencies.push(doneAt - sentAt);
          }
        }
      }),
    );
  } finally {
    clearTimeout(windowTimer);
  }
  return { completed, rate: completed / (options.measureMs / 1000), latency: summarize(latencies), errors, firstError };
}

export interface DrainResult {
  drained: number;
  /** The drain was expected to reach this many (the queue's content when it began). */
  expected: number;
  complete: boolean;
  seconds: number;
  /** drained / seconds */
  rate: number;
  firstTenthRate: number;
  lastTenthRate: number;
  rounds: number;
  take: LatencySummary;
  remove: LatencySummary;
}

/**
 * Takes a batch, removes it, and again, until a take comes back empty or `maxMs` has passed. `remove` is left out
 * where the take deletes what it returns (raw PostgreSQL's DELETE … RETURNING).
 */
export async function drainLoop(
  options: { expected: number; maxMs: number },
  take: () => Promise<string[]>,
  remove?: (ids: string[]) => Promise<void>,
): Promise<DrainResult> {
  const checkpoints: { drained: number; at: number }[] = [];
  const takeMs: number[] = [];
  const removeMs: number[] = [];
  let drained = 0;
  const start = nowMs();
  checkpoints.push({ drained: 0, at: start });
  while (nowMs() - start < options.maxMs) {
    const t0 = nowMs();
    const ids = await take();
    const t1 = nowMs();
    takeMs.push(t1 - t0);
    if (ids.length === 0) break;
    if (remove) {
      await remove(ids);
      removeMs.push(nowMs() - t1);
    }
    drained += ids.length;
    checkpoints.push({ drained, at: nowMs() });
  }
  const end = checkpoints[checkpoints.length - 1].at;
  const rateBetween = (fromFraction: number, toFraction: number): number => {
    const from = checkpoints.find((c) => c.drained >= fromFraction * options.expected) ?? checkpoints[0];
    const to = checkpoints.find((c) => c.drained >= toFraction * options.expected) ?? checkpoints[checkpoints.length - 1];
    return to.at > from.at ? ((to.drained - from.drained) * 1000) / (to.at - from.at) : Number.NaN;
  };
  const seconds = (end - start) / 1000;
  return {
    drained,
    expected: options.expected,
    complete: drained >= options.expected,
    seconds,
    rate: seconds > 0 ? drained / seconds : Number.NaN,
    firstTenthRate: rateBetween(0, 0.1),
    lastTenthRate: rateBetween(0.9, 1),
    rounds: checkpoints.length - 1,
    take: summarize(takeMs),
    remove: summarize(removeMs),
  };
}

export interface ScheduleOptions {
  ratePerSecond: number;
  /** Sent at the same rate before the measured part: delivered and acknowledged but not timed. */
  warmupMs: number;
  durationMs: number;
}

export interface ScheduleRun {
  /** Every message sent, warm-up included. */
  sent: number;
  warmupCount: number;
  /** Measured messages due. */
  expected: number;
  /** nowMs() at the first measured send (undefined when none was measured). */
  measuredStart: number | undefined;
  start: number;
  sendSeconds: number;
  /** The most a send was late against its schedule (a load generator falling behind shows here). */
  maxLagMs: number;
}

/**
 * Open loop: message i is due at start + i / rate, whether or not earlier ones were answered. `send(i, measured,
 * at)` starts message i (it must not wait for the answer).
 */
export async function runSchedule(
  options: ScheduleOptions,
  send: (index: number, measured: boolean, at: number) => void,
  keepGoing: () => boolean = () => true,
  onMeasuredStart?: () => void,
): Promise<ScheduleRun> {
  const rate = options.ratePerSecond;
  const warmupCount = Math.round((rate * options.warmupMs) / 1000);
  const total = warmupCount + Math.round((rate * options.durationMs) / 1000);
  const intervalMs = 1000 / rate;
  let sent = 0;
  let maxLagMs = 0;
  let measuredStart: number | undefined;
  const start = nowMs();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor((nowMs() - start) / intervalMs) + 1);
      while (sent < due) {
        const i = sent++;
        const measured = i >= warmupCount;
        if (i === warmupCount) {
          onMeasuredStart?.();
          measuredStart = nowMs();
        }
        const at = nowMs();
        if (measured) maxLagMs = Math.max(maxLagMs, at - (start + i * intervalMs));
        send(i, measured, at);
      }
      if (sent < total && keepGoing()) setTimeout(tick, Math.max(0, Math.min(1, start + sent * intervalMs - nowMs())));
      else resolve();
    };
    tick();
  });
  return {
    sent,
    warmupCount,
    expected: total - warmupCount,
    measuredStart,
    start,
    sendSeconds: (nowMs() - (measuredStart ?? start)) / 1000,
    maxLagMs,
  };
}

/**
 * What an open-loop live run records: when each measured message was sent (keyed by whatever identifies it on
 * delivery: its id, or for the peer the payload object itself), when it was delivered, the sender's add
 * acknowledgements, and the holder's acknowledgements (removeMessages) in flight.
 */
export class DeliveryRecorder<K> {
  private readonly sentAt = new Map<K, number>();
  private readonly notified = new Set<K>();
  readonly latencies: number[] = [];
  /** [send time, latency] per delivered message, for the per-second breakdown. */
  private readonly timeline: [number, number][] = [];
  private readonly addLatencies: number[] = [];
  private readonly adds: Promise<void>[] = [];
  duplicates = 0;
  added = 0;
  addErrors = 0;
  firstAddError: string | undefined;
  ackErrors = 0;
  acksInFlight = 0;

  /** Message `key` is sent now (a measured one): `add` is the sender's call, settled when it is acknowledged. */
  sent(key: K, at: number, add: Promise<unknown>, measured: boolean): void {
    if (measured) this.sentAt.set(key, at);
    this.adds.push(
      add.then(
        () => {
          if (!measured) return;
          this.added++;
          this.addLatencies.push(nowMs() - at);
        },
        (error: unknown) => {
          this.addErrors++;
          this.firstAddError ??= (error as Error).message;
        },
      ),
    );
  }

  /** Message `key` reached the holder at `at` (warm-up and unknown keys are ignored). */
  delivered(key: K, at: number): void {
    const sentAt = this.sentAt.get(key);
    if (sentAt === undefined) return;
    if (this.notified.has(key)) {
      this.duplicates++;
      return;
    }
    this.notified.add(key);
    this.latencies.push(at - sentAt);
    this.timeline.push([sentAt, at - sentAt]);
  }

  /** The holder's acknowledgement of what it was given. */
  acknowledge(ack: Promise<unknown>): void {
    this.acksInFlight++;
    ack.catch(() => this.ackErrors++).finally(() => this.acksInFlight--);
  }

  /**
   * After the schedule: waits (bounded) for the adds, the deliveries of what was added, then (after `beforeAcks`)
   * the acknowledgements in flight.
   */
  async settle(beforeAcks?: () => Promise<void>): Promise<void> {
    await Promise.race([Promise.all(this.adds), sleep(15_000)]);
    await waitFor(() => this.notified.size >= this.added, 5_000);
    await beforeAcks?.();
    await waitFor(() => this.acksInFlight === 0, 10_000);
  }

  result(run: ScheduleRun): OpenLoopResult {
    const perSecond = new Map<number, number[]>();
    for (const [at, value] of this.timeline) {
      const second = Math.floor((at - (run.measuredStart ?? run.start)) / 1000);
      const values = perSecond.get(second) ?? [];
      values.push(value);
      perSecond.set(second, values);
    }
    return {
      ...run,
      latencies: this.latencies,
      latency: summarize(this.latencies),
      addLatency: summarize(this.addLatencies),
      added: this.added,
      notified: this.notified.size,
      addErrors: this.addErrors,
      firstAddError: this.firstAddError,
      duplicates: this.duplicates,
      ackErrors: this.ackErrors,
      secondly: [...perSecond.entries()].sort((a, b) => a[0] - b[0]).map(([, values]) => summarize(values).p99),
    };
  }
}

export interface OpenLoopResult extends ScheduleRun {
  /** Latency of every measured message delivered once. */
  latencies: number[];
  latency: LatencySummary;
  addLatency: LatencySummary;
  /** Measured messages added (acknowledged to the sender) and delivered to the holder. */
  added: number;
  notified: number;
  addErrors: number;
  firstAddError: string | undefined;
  duplicates: number;
  ackErrors: number;
  /** p99 latency of the messages sent in each second after `measuredStart`: tells a steady tail from a few stalls. */
  secondly: number[];
}

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await sleep(20);
}
