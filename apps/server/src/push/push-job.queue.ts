export type PushJob = () => Promise<void>;

/** What became of an offered job. `replaced`: it took the place of an older waiting job of the same key. */
export type OfferOutcome = 'started' | 'queued' | 'replaced' | 'refused';

/**
 * Runs push work off the caller's path with bounded concurrency and a bounded backlog: a storm of adds for offline
 * devices cannot open unbounded sockets to a provider or grow memory without limit. Jobs handle their own errors.
 *
 * When the backlog is full, a job offered with a key replaces the waiting job of the same key (the latest decision
 * for a device is the one worth keeping: older ones would be coalesced into its window anyway); without such a job
 * it is refused. Retries wait on a timer (`later`), outside the concurrency slots, and are offered again when due.
 */
export class PushJobQueue {
  private running = 0;
  /** Insertion-ordered; unkeyed jobs get a unique symbol. */
  private readonly backlog = new Map<string | symbol, PushJob>();
  private readonly delayed = new Map<NodeJS.Timeout, () => void>();
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly maxConcurrent: number,
    private readonly maxBacklog: number,
    /** A job that rejected despite handling its own errors: a bug, reported rather than left unhandled. */
    private readonly onUnexpected: (error: unknown) => void,
  ) {}

  /** Starts or queues the job (see the class comment for a full backlog). */
  offer(job: PushJob, key?: string): OfferOutcome {
    if (this.running < this.maxConcurrent) {
      this.start(job);
      return 'started';
    }
    if (this.backlog.size >= this.maxBacklog) {
      if (key === undefined || !this.backlog.has(key)) return 'refused';
      this.backlog.set(key, job); // keeps the older job's place in line
      return 'replaced';
    }
    // A keyed job that is already waiting keeps its place; a second one with the same key waits as its own entry.
    this.backlog.set(key !== undefined && !this.backlog.has(key) ? key : Symbol(key), job);
    return 'queued';
  }

  /**
   * Offers `job` after `delayMs` without holding a slot meanwhile. `onDropped` runs if it never runs: the backlog
   * was full when it came due, or `cancelDelayed` (shutdown) dropped it.
   */
  later(job: PushJob, delayMs: number, onDropped: (why: 'overloaded' | 'aborted') => void): void {
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      if (this.offer(job) === 'refused') onDropped('overloaded');
      this.wakeIfIdle();
    }, delayMs);
    this.delayed.set(timer, () => onDropped('aborted'));
  }

  /** Drops every job still waiting on its timer (shutdown), reporting each through its `onDropped`. */
  cancelDelayed(): void {
    const dropped = [...this.delayed.entries()];
    this.delayed.clear();
    for (const [timer, onDropped] of dropped) {
      clearTimeout(timer);
      onDropped();
    }
    this.wakeIfIdle();
  }

  /** Jobs running, waiting for a slot, or waiting on a retry timer. */
  get size(): number {
    return this.running + this.backlog.size + this.delayed.size;
  }

  /** Resolves when nothing runs or waits, or after `timeoutMs`; true when idle. */
  async drain(timeoutMs: number): Promise<boolean> {
    if (this.size === 0) return true;
    if (timeoutMs <= 0) return false;
    return new Promise<boolean>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((waiter) => waiter !== wake);
        resolve(this.size === 0);
      }, timeoutMs);
      this.idleWaiters.push(wake);
    });
  }

  private start(job: PushJob): void {
    this.running++;
    void job()
      .then(undefined, this.onUnexpected)
      .finally(() => {
        this.running--;
        const next = this.backlog.entries().next();
        if (!next.done) {
          this.backlog.delete(next.value[0]);
          this.start(next.value[1]);
        } else this.wakeIfIdle();
      });
  }

  private wakeIfIdle(): void {
    if (this.size !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    waiters.forEach((wake) => wake());
  }
}
