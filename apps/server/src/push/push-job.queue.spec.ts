import { PushJobQueue } from './push-job.queue';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

describe('PushJobQueue', () => {
  it('keeps the latest job per key when the backlog is full, refusing jobs of other keys', async () => {
    const queue = new PushJobQueue(1, 2, (error) => {
      throw error;
    });
    const ran: string[] = [];
    const blocker = gate();
    expect(queue.offer(() => blocker.wait)).toBe('started');
    expect(queue.offer(async () => void ran.push('a1'), 'a')).toBe('queued');
    expect(queue.offer(async () => void ran.push('b1'), 'b')).toBe('queued');
    expect(queue.offer(async () => void ran.push('a2'), 'a')).toBe('replaced');
    expect(queue.offer(async () => void ran.push('c1'), 'c')).toBe('refused');
    expect(queue.offer(async () => void ran.push('x'))).toBe('refused');
    blocker.open();
    expect(await queue.drain(1000)).toBe(true);
    expect(ran).toEqual(['a2', 'b1']);
  });

  it('waits for a retry on a timer without holding a slot', async () => {
    const queue = new PushJobQueue(1, 10, (error) => {
      throw error;
    });
    const ran: string[] = [];
    queue.later(
      async () => void ran.push('retry'),
      100,
      () => ran.push('dropped'),
    );
    expect(queue.size).toBe(1);
    expect(queue.offer(async () => void ran.push('other'))).toBe('started');
    await sleep(10);
    expect(ran).toEqual(['other']);
    expect(await queue.drain(1000)).toBe(true);
    expect(ran).toEqual(['other', 'retry']);
  });

  it('drops retries still waiting at cancelDelayed, and is idle then', async () => {
    const queue = new PushJobQueue(1, 10, (error) => {
      throw error;
    });
    const dropped: string[] = [];
    queue.later(
      async () => undefined,
      60_000,
      (why) => dropped.push(why),
    );
    expect(await queue.drain(20)).toBe(false);
    queue.cancelDelayed();
    expect(dropped).toEqual(['aborted']);
    expect(await queue.drain(0)).toBe(true);
  });
});
