/**
 * The fault suite runs in two sizes: `short` (the default, part of `npm test`: each fault once, small volumes,
 * a couple of minutes in all) and `full` (`npm run test:faults`: the volumes and durations of issue 6, and
 * the Markdown table in bench/results/faults-latest.md).
 */
export type FaultsProfileName = 'short' | 'full';

export function faultsProfile(): FaultsProfileName {
  const value = process.env.FAULTS_PROFILE ?? 'short';
  if (value !== 'short' && value !== 'full') throw new Error(`FAULTS_PROFILE must be "short" or "full", not ${JSON.stringify(value)}`);
  return value;
}

/** Picks the value for the current profile. */
export function byProfile<T>(values: { short: T; full: T }): T {
  return values[faultsProfile()];
}

/**
 * The redelivery timeout the servers under test run with: short enough that a message left 'sending' to a
 * vanished holder comes back within the final audit, long enough that holders acknowledging at once never
 * see a timeout redelivery while the machine is busy.
 */
export const FAULTS_REDELIVERY_TIMEOUT_MS = 15_000;

/**
 * The least share of the nominal rate a run must have acknowledged to count as "under load". The short form
 * shares the machine's two cores with the other suites of `npm test` (a CI run of the soak acknowledged 47% of
 * its nominal rate, with nothing lost); the full form runs alone.
 */
export const MIN_LOAD_SHARE = byProfile({ short: 0.3, full: 0.5 });
