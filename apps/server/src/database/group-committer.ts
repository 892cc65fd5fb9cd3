/** A flush result that rejects its one item (the others of the batch still succeed). */
export class ItemFailure {
  constructor(readonly error: unknown) {}
}

export interface GroupCommitterOptions<TItem, TResult> {
  /**
   * Executes one batch; must resolve with one result (or `ItemFailure`) per item, in order, or reject for the
   * whole batch.
   */
  flush: (items: TItem[]) => Promise<(TResult | ItemFailure)[]>;
  /** Batches executing at once; items arriving meanwhile wait and go together into the next batch. */
  maxConcurrentFlushes: number;
  maxBatchItems: number;
  /** Weight bound of a batch (e.g. payload bytes), so one statement never carries an unbounded load. */
  maxBatchWeight: number;
  weigh: (item: TItem) => number;
}

interface Pending<TItem, TResult> {
  item: TItem;
  resolve: (result: TResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit without a timer: an item submitted while a flush slot is free is flushed at once, alone;
 * items submitted while every slot is busy accumulate and share the next statement and commit. Under light
 * load this adds no latency, under heavy load it turns N commits into one, which is what lets concurrent
 * adds go far beyond PostgreSQL's single-row commit rate.
 */
export class GroupCommitter<TItem, TResult> {
  private readonly waiting: Pending<TItem, TResult>[] = [];
  private running = 0;

  constructor(private readonly options: GroupCommitterOptions<TItem, TResult>) {}

  submit(item: TItem): Promise<TResult> {
    return new Promise<TResult>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.drain();
    });
  }

  /** Items accepted but not yet resolved (waiting or in a running flush). */
  get idle(): boolean {
    return this.running === 0 && this.waiting.length === 0;
  }

  private drain(): void {
    while (this.running < this.options.maxConcurrentFlushes && this.waiting.length > 0) {
      this.running++;
      void this.run(this.takeBatch());
    }
  }

  private takeBatch(): Pending<TItem, TResult>[] {
    let weight = 0;
    let count = 0;
    while (count < this.waiting.length && count < this.options.maxBatchItems) {
      const next = this.options.weigh(this.waiting[count].item);
      // The first item always goes, even if it alone exceeds the weight bound.
      if (count > 0 && weight + next > this.options.maxBatchWeight) break;
      weight += next;
      count++;
    }
    return this.waiting.splice(0, count);
  }

  private async run(batch: Pending<TItem, TResult>[]): Promise<void> {
    try {
      const results = await this.options.flush(batch.map((pending) => pending.item));
      if (results.length !== batch.length) {
        throw new Error(`flush returned ${results.length} results for ${batch.length} items`);
      }
      batch.forEach((pending, index) => {
        const result = results[index];
        if (result instanceof ItemFailure) pending.reject(result.error);
        else pending.resolve(result);
      });
    } catch (error) {
      batch.forEach((pending) => pending.reject(error));
    } finally {
      this.running--;
      this.drain();
    }
  }
}
