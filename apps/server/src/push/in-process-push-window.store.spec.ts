import { InProcessPushWindowStore } from './in-process-push-window.store';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** A decision of connection `connectionId` of `tenant` (t1 unless said otherwise). */
const fold = (connectionId: string, messageId: string, tenant = 't1') => ({ ref: { tenant, connectionId }, messageId });

describe('InProcessPushWindowStore', () => {
  it('opens a window once until it ends, folding what arrives meanwhile', async () => {
    const store = new InProcessPushWindowStore();
    expect(await store.openOrFold('k', 50, fold('a', 'm1'))).toBe(true);
    expect(await store.openOrFold('k', 50, fold('a', 'm2'))).toBe(false);
    expect(await store.openOrFold('other', 50, fold('b', 'm3'))).toBe(true);
    await sleep(70);
    expect(await store.openOrFold('k', 50, fold('a', 'm4'))).toBe(true);
  });

  it('keeps every connection folded into a window, the latest message of each, until taken', async () => {
    const store = new InProcessPushWindowStore();
    await store.openOrFold('device', 1000, fold('a', 'm1'));
    await store.openOrFold('device', 1000, fold('b', 'm2'));
    await store.openOrFold('device', 1000, fold('a', 'm3'));
    await store.openOrFold('device', 1000, fold('b', 'm4'));
    const folded = await store.takeFolded('device');
    expect(folded.sort((x, y) => x.ref.connectionId.localeCompare(y.ref.connectionId))).toEqual([fold('a', 'm3'), fold('b', 'm4')]);
    expect(await store.takeFolded('device')).toEqual([]);
  });

  it('clears the window and the starting connection only: other connections of the device stay for the trailing check', async () => {
    const store = new InProcessPushWindowStore();
    await store.openOrFold('device', 10_000, fold('a', 'm1'));
    await store.openOrFold('device', 10_000, fold('a', 'm2'));
    await store.openOrFold('device', 10_000, fold('b', 'm3'));
    await store.clear('device', { tenant: 't1', connectionId: 'a' });
    expect(await store.openOrFold('device', 10_000, fold('c', 'm4'))).toBe(true);
    expect(await store.takeFolded('device')).toEqual([fold('b', 'm3')]);
  });

  it('keeps the same connectionId of two tenants apart, and a connectionId with separators whole', async () => {
    const store = new InProcessPushWindowStore();
    await store.openOrFold('device', 10_000, fold('a', 'm1'));
    await store.openOrFold('device', 10_000, fold('a', 'm2', 't1'));
    await store.openOrFold('device', 10_000, fold('a', 'm3', 't2'));
    await store.openOrFold('device', 10_000, fold('x:{y}', 'm4', 't2'));
    await store.clear('device', { tenant: 't1', connectionId: 'a' });
    expect(await store.takeFolded('device')).toEqual([fold('a', 'm3', 't2'), fold('x:{y}', 'm4', 't2')]);
  });
});
