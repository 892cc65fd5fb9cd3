import { ContenderName } from './contenders/contender';
import { Report } from './report';
import { formatRatio, Spread } from './three-way-table';

/** "1.76× (1.69–1.78), median of 3 rounds" */
export function describeRatio(ratio: Spread): string {
  if (ratio.count === 0) return 'not measured';
  return `${formatRatio(ratio)}×${ratio.count > 1 ? `, median of ${ratio.count} rounds` : ', one round'}`;
}

/** Whether a ratio's median keeps its bound. */
export function ratioMet(ratio: Spread, bound: { atLeast?: number; atMost?: number }): boolean {
  if (ratio.count === 0) return false;
  if (bound.atLeast !== undefined) return ratio.median >= bound.atLeast;
  return ratio.median <= bound.atMost!;
}

/**
 * The issue's targets that the three-way table answers, as ratios within this run (absolute figures move with the
 * machine): each is the median of the per-round ratios; an incomplete run (a drain that did not finish, a message
 * not delivered) does not meet its target.
 */
export function judgeThreeWayTargets(report: Report): void {
  const table = report.threeWay;
  const check = (name: string, key: string, versus: ContenderName, bound: { atLeast?: number; atMost?: number }) => {
    if (!table.has(key)) return;
    const ratio = table.ratio(key, 'server', versus);
    const complete = table.complete(key, 'server') && table.complete(key, versus);
    report.target({
      name,
      value: describeRatio(ratio) + (complete ? '' : '; a run was incomplete'),
      met: ratio.count ? ratioMet(ratio, bound) && complete : undefined,
    });
  };
  check('add, 32 callers ≥ 2.0× the peer', 'add32', 'peer', { atLeast: 2 });
  check('add, 32 callers ≥ 1.0× raw 16-client single-row commits', 'add32', 'raw', { atLeast: 1 });
  check('add, 1 caller ≥ 1.3× the peer', 'add1', 'peer', { atLeast: 1.3 });
  check('drain, backlog just arrived through the add path (no ANALYZE) ≥ 1.5× the peer', 'drain-stale', 'peer', { atLeast: 1.5 });
  check('drain after VACUUM ANALYZE ≥ 1.5× the peer', 'drain-analyzed', 'peer', { atLeast: 1.5 });
  check('live p99 at 1,000 msg/s beside the backlog ≤ 1.5× raw 16-client commit p99', 'live-backlog', 'raw', { atMost: 1.5 });
}
