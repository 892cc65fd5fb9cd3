import { corpusOf, TARGETS } from './support/fuzz-corpus';
import { FuzzTarget } from './support/fuzz-target';

/**
 * Every committed fuzz input, replayed through its target in-process: the seeds (frames of the test suite) and the
 * regressions (inputs the fuzzer once found a problem with). Each must be handled as the target's contract says.
 */
describe('fuzz corpora replayed', () => {
  it.each(Object.keys(TARGETS))('%s: every seed and regression input is handled as the contract says', async (name) => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const harness = await ((await import(TARGETS[name].module)) as { target: FuzzTarget }).target.setup();
    const failures: string[] = [];
    try {
      const inputs = corpusOf(name);
      expect(inputs.length).toBeGreaterThan(0);
      for (const { name: file, input } of inputs) {
        await harness.run(input).catch((error: unknown) => failures.push(`${file}: ${(error as Error)?.message ?? String(error)}`));
        await new Promise((resolve) => setImmediate(resolve));
        for (const reason of unhandled.splice(0))
          failures.push(`${file}: unhandled rejection ${(reason as Error)?.message ?? String(reason)}`);
      }
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await harness.close();
    }
    expect(failures).toEqual([]);
  });
});
