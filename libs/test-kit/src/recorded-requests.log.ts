/** What a fake push service received, in order, with a wait for requests still to come. */
export class RecordedRequests<T> {
  readonly all: T[] = [];
  private waiters: (() => void)[] = [];

  constructor(private readonly label: string) {}

  record(request: T): void {
    this.all.push(request);
    const waiters = this.waiters;
    this.waiters = [];
    waiters.forEach((wake) => wake());
  }

  /** Resolves once `count` requests satisfy `filter`, or rejects after `timeoutMs` naming what was awaited. */
  async waitFor(count: number, filter: (request: T) => boolean, what: string, timeoutMs = 10_000): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const matching = this.all.filter(filter);
      if (matching.length >= count) return matching;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.label}: expected ${count} requests ${what}, got ${matching.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
