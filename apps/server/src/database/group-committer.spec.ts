import { GroupCommitter, GroupCommitterOptions, ItemFailure } from './group-committer';

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback run (several rounds, for chained awaits). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

interface Flush {
  items: string[];
  done: Deferred<string[]>;
}

/**
 * A GroupCommitter over a fake flush that the test completes by hand. Items are strings whose weight is
 * their length; `complete(i)` resolves flush `i` with `item:ok` for each of its items.
 */
function harness(options: Partial<GroupCommitterOptions<string, string>> = {}) {
  const flushes: Flush[] = [];
  let running = 0;
  let maxRunning = 0;
  const committer = new GroupCommitter<string, string>({
    flush: (items) => {
      const done = deferred<string[]>();
      flushes.push({ items: [...items], done });
      running++;
      maxRunning = Math.max(maxRunning, running);
      return done.promise.finally(() => running--);
    },
    maxConcurrentFlushes: 1,
    maxBatchItems: 100,
    maxBatchWeight: 1_000_000,
    weigh: (item) => item.length,
    ...options,
  });
  const complete = async (index: number) => {
    flushes[index].done.resolve(flushes[index].items.map((item) => `${item}:ok`));
    await settle();
  };
  const fail = async (index: number, error: unknown) => {
    flushes[index].done.reject(error);
    await settle();
  };
  return { committer, flushes, complete, fail, maxRunning: () => maxRunning, running: () => running };
}

/** Tracks a promise's outcome without awaiting it. */
function track<T>(promise: Promise<T>) {
  const state: { status: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { status: 'pending' };
  promise.then(
    (value) => Object.assign(state, { status: 'resolved', value }),
    (error: unknown) => Object.assign(state, { status: 'rejected', error }),
  );
  return state;
}

describe('GroupCommitter', () => {
  afterEach(() => jest.useRealTimers());

  it('flushes the first item alone, synchronously within submit, with no timer', async () => {
    jest.useFakeTimers();
    const h = harness({ maxConcurrentFlushes: 4 });
    const first = track(h.committer.submit('a'));
    // called before submit returned: no timer, no microtask wait
    expect(h.flushes.map((f) => f.items)).toEqual([['a']]);
    expect(jest.getTimerCount()).toBe(0);
    await h.complete(0);
    expect(first).toEqual({ status: 'resolved', value: 'a:ok' });
    expect(jest.getTimerCount()).toBe(0);
    expect(h.committer.idle).toBe(true);
  });

  it('groups the items that arrive during a flush into the next batch, in submission order', async () => {
    const h = harness({ maxConcurrentFlushes: 1 });
    const a = track(h.committer.submit('a'));
    const rest = ['b', 'c', 'd'].map((item) => track(h.committer.submit(item)));
    expect(h.flushes.map((f) => f.items)).toEqual([['a']]);
    expect(h.committer.idle).toBe(false);
    await h.complete(0);
    expect(a.status).toBe('resolved');
    expect(h.flushes.map((f) => f.items)).toEqual([['a'], ['b', 'c', 'd']]);
    expect(rest.map((r) => r.status)).toEqual(['pending', 'pending', 'pending']);
    // items arriving during the second flush form the third batch
    const e = track(h.committer.submit('e'));
    expect(h.flushes).toHaveLength(2);
    await h.complete(1);
    expect(rest.map((r) => r.value)).toEqual(['b:ok', 'c:ok', 'd:ok']);
    expect(h.flushes.map((f) => f.items)).toEqual([['a'], ['b', 'c', 'd'], ['e']]);
    await h.complete(2);
    expect(e.value).toBe('e:ok');
    expect(h.committer.idle).toBe(true);
  });

  it('never runs more than maxConcurrentFlushes at once', async () => {
    const h = harness({ maxConcurrentFlushes: 2 });
    const results = ['a', 'b', 'c', 'd', 'e'].map((item) => track(h.committer.submit(item)));
    // two free slots: a and b flush alone at once; c, d, e wait together
    expect(h.flushes.map((f) => f.items)).toEqual([['a'], ['b']]);
    expect(h.running()).toBe(2);
    await h.complete(1);
    expect(h.flushes.map((f) => f.items)).toEqual([['a'], ['b'], ['c', 'd', 'e']]);
    expect(h.running()).toBe(2);
    const f = track(h.committer.submit('f'));
    const g = track(h.committer.submit('g'));
    expect(h.flushes).toHaveLength(3);
    await h.complete(0);
    expect(h.flushes.map((x) => x.items)).toEqual([['a'], ['b'], ['c', 'd', 'e'], ['f', 'g']]);
    await h.complete(2);
    await h.complete(3);
    expect(h.maxRunning()).toBe(2);
    expect([...results, f, g].map((r) => r.value)).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((i) => `${i}:ok`));
    expect(h.committer.idle).toBe(true);
  });

  it('respects maxConcurrentFlushes under a larger load', async () => {
    const limit = 3;
    let running = 0;
    let maxRunning = 0;
    const committer = new GroupCommitter<number, number>({
      flush: async (items) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((resolve) => setImmediate(resolve));
        running--;
        return items.map((item) => item * 2);
      },
      maxConcurrentFlushes: limit,
      maxBatchItems: 7,
      maxBatchWeight: 1000,
      weigh: () => 1,
    });
    const inputs = Array.from({ length: 500 }, (_, i) => i);
    const results = await Promise.all(inputs.map((i) => committer.submit(i)));
    expect(results).toEqual(inputs.map((i) => i * 2));
    expect(maxRunning).toBe(limit);
    expect(committer.idle).toBe(true);
  });

  it('splits waiting items into batches of at most maxBatchItems', async () => {
    const h = harness({ maxConcurrentFlushes: 1, maxBatchItems: 3 });
    const all = ['first', 'b1', 'b2', 'b3', 'c1', 'c2', 'c3', 'd1'].map((item) => track(h.committer.submit(item)));
    for (let i = 0; i < 4; i++) await h.complete(i);
    expect(h.flushes.map((f) => f.items)).toEqual([['first'], ['b1', 'b2', 'b3'], ['c1', 'c2', 'c3'], ['d1']]);
    expect(all.every((r) => r.status === 'resolved')).toBe(true);
  });

  it('splits waiting items so that a batch stays within maxBatchWeight, but an overweight item still goes alone', async () => {
    // weights are string lengths; the bound is 10
    const h = harness({ maxConcurrentFlushes: 1, maxBatchWeight: 10 });
    const items = ['x', 'aaaa', 'bbbb', 'cc', 'dddddddddddddddd', 'ee', 'ffffffffff', 'g'];
    const all = items.map((item) => track(h.committer.submit(item)));
    for (let i = 0; h.flushes.length > i; i++) await h.complete(i);
    expect(h.flushes.map((f) => f.items)).toEqual([['x'], ['aaaa', 'bbbb', 'cc'], ['dddddddddddddddd'], ['ee'], ['ffffffffff'], ['g']]);
    for (const flush of h.flushes) {
      const weight = flush.items.reduce((sum, item) => sum + item.length, 0);
      expect(flush.items.length === 1 || weight <= 10).toBe(true);
    }
    expect(all.map((r) => r.value)).toEqual(items.map((item) => `${item}:ok`));
  });

  it('applies both bounds together', async () => {
    const h = harness({ maxConcurrentFlushes: 1, maxBatchItems: 2, maxBatchWeight: 5 });
    ['0', 'a', 'b', 'c', 'dddd', 'e'].forEach((item) => void h.committer.submit(item));
    for (let i = 0; h.flushes.length > i; i++) await h.complete(i);
    expect(h.flushes.map((f) => f.items)).toEqual([['0'], ['a', 'b'], ['c', 'dddd'], ['e']]);
  });

  it('a failing flush rejects only its own batch; earlier and later items succeed', async () => {
    const h = harness({ maxConcurrentFlushes: 1 });
    const a = track(h.committer.submit('a'));
    const failing = ['b', 'c'].map((item) => track(h.committer.submit(item)));
    await h.complete(0);
    const later = ['d', 'e'].map((item) => track(h.committer.submit(item)));
    const boom = new Error('database is down');
    await h.fail(1, boom);
    expect(a).toEqual({ status: 'resolved', value: 'a:ok' });
    expect(failing.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(failing.map((r) => r.error)).toEqual([boom, boom]);
    expect(later.map((r) => r.status)).toEqual(['pending', 'pending']);
    expect(h.flushes.map((f) => f.items)).toEqual([['a'], ['b', 'c'], ['d', 'e']]);
    await h.complete(2);
    expect(later.map((r) => r.value)).toEqual(['d:ok', 'e:ok']);
    // and the committer keeps working afterwards
    const f = track(h.committer.submit('f'));
    await h.complete(3);
    expect(f.value).toBe('f:ok');
    expect(h.committer.idle).toBe(true);
  });

  it('a flush that throws synchronously rejects its batch and frees its slot', async () => {
    let calls = 0;
    const committer = new GroupCommitter<string, string>({
      flush: (items) => {
        calls++;
        if (calls === 1) throw new Error('sync failure');
        return Promise.resolve(items.map((item) => item.toUpperCase()));
      },
      maxConcurrentFlushes: 1,
      maxBatchItems: 10,
      maxBatchWeight: 10,
      weigh: () => 1,
    });
    await expect(committer.submit('a')).rejects.toThrow('sync failure');
    await expect(committer.submit('b')).resolves.toBe('B');
    expect(committer.idle).toBe(true);
  });

  it('rejects the batch when the flush returns the wrong number of results, and keeps working', async () => {
    const h = harness({ maxConcurrentFlushes: 1 });
    void h.committer.submit('a');
    const short = ['b', 'c'].map((item) => track(h.committer.submit(item)));
    await h.complete(0);
    h.flushes[1].done.resolve(['only-one']);
    await settle();
    expect(short.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(String((short[0].error as Error).message)).toMatch(/1 results for 2 items/);
    const d = track(h.committer.submit('d'));
    await h.complete(2);
    expect(d.value).toBe('d:ok');
  });

  it('maps results to items by position', async () => {
    const h = harness({ maxConcurrentFlushes: 1 });
    void h.committer.submit('warm-up');
    const items = ['p', 'q', 'r', 's'];
    const results = items.map((item) => track(h.committer.submit(item)));
    await h.complete(0);
    h.flushes[1].done.resolve(['R0', 'R1', 'R2', 'R3']);
    await settle();
    expect(results.map((r) => r.value)).toEqual(['R0', 'R1', 'R2', 'R3']);
  });

  it('passes undefined results through (e.g. a duplicate that was not inserted)', async () => {
    const committer = new GroupCommitter<string, string | undefined>({
      flush: async (items) => items.map((item) => (item === 'dup' ? undefined : item)),
      maxConcurrentFlushes: 1,
      maxBatchItems: 10,
      maxBatchWeight: 100,
      weigh: () => 1,
    });
    await expect(Promise.all(['a', 'dup', 'b'].map((item) => committer.submit(item)))).resolves.toEqual(['a', undefined, 'b']);
  });

  it('is idle only when nothing waits and nothing runs', async () => {
    const h = harness({ maxConcurrentFlushes: 1 });
    expect(h.committer.idle).toBe(true);
    void h.committer.submit('a');
    void h.committer.submit('b');
    expect(h.committer.idle).toBe(false);
    await h.complete(0);
    expect(h.committer.idle).toBe(false);
    await h.complete(1);
    expect(h.committer.idle).toBe(true);
  });

  it('rejects only the items a flush marks as ItemFailure', async () => {
    const committer = new GroupCommitter<string, string>({
      flush: async (items) => items.map((item) => (item === 'bad' ? new ItemFailure(new Error('bad item')) : `${item}:ok`)),
      maxConcurrentFlushes: 1,
      maxBatchItems: 10,
      maxBatchWeight: 1000,
      weigh: () => 1,
    });
    const results = await Promise.allSettled(['a', 'bad', 'b'].map((item) => committer.submit(item)));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['a:ok', 'bad item', 'b:ok']);
  });
});
