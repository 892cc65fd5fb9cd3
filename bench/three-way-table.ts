import { CONTENDER_ORDER, ContenderName } from './contenders/contender';
import { formatInt, formatMs } from './stats';

/** A figure measured once per round for each contender: a rate (higher is better) or a latency (lower is better). */
export interface RowSpec {
  key: string;
  /** e.g. "add, 1 caller: msg/s". */
  figure: string;
  /** The table it runs on: rows pending for other connections, statistics fresh or not, fresh database or not. */
  table: string;
  unit: 'rate' | 'latency';
  /** What the raw column measures when it is not the same operation (e.g. "16 clients"). */
  rawNote?: string;
}

/** One measurement: for a latency row `value` is the p99 and `p50` rides along. */
export interface Sample {
  value: number;
  p50?: number;
  /** False when the run fell short (an error, not all delivered): the cell is flagged and no target is met with it. */
  complete?: boolean;
  /** The run stopped at its time bound (a drain): the figure is the rate over what it did; the cell is marked †. */
  bounded?: boolean;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  count: number;
}

interface Row {
  spec: RowSpec;
  samples: Record<ContenderName, Map<number, Sample>>;
}

export function spreadOf(values: number[]): Spread {
  const finite = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, count: 0 };
  const middle = Math.floor(finite.length / 2);
  const median = finite.length % 2 ? finite[middle] : (finite[middle - 1] + finite[middle]) / 2;
  return { median, min: finite[0], max: finite[finite.length - 1], count: finite.length };
}

function formatValue(unit: RowSpec['unit'], value: number): string {
  return unit === 'rate' ? formatInt(value) : formatMs(value).replace(' ms', '');
}

/** "1,234 (1,100–1,300)": the median, and the range when there was more than one round. */
function formatSpread(unit: RowSpec['unit'], spread: Spread): string {
  if (spread.count === 0) return '';
  const median = formatValue(unit, spread.median);
  return spread.count > 1 ? `${median} (${formatValue(unit, spread.min)}–${formatValue(unit, spread.max)})` : median;
}

export function formatRatio(spread: Spread): string {
  if (spread.count === 0) return '';
  const fixed = (value: number) => value.toFixed(2);
  return spread.count > 1 ? `${fixed(spread.median)} (${fixed(spread.min)}–${fixed(spread.max)})` : fixed(spread.median);
}

/**
 * The three-way table: per figure, raw PostgreSQL | the peer | this server, each the median of its rounds with the
 * range, and the ratios server/peer and server/raw computed per round (from the same round's pair) and then
 * summarised the same way, since single runs on a shared machine swing by a third and more.
 */
export class ThreeWayTable {
  private readonly rows = new Map<string, Row>();
  rounds = 0;

  define(spec: RowSpec): void {
    if (!this.rows.has(spec.key)) this.rows.set(spec.key, { spec, samples: { raw: new Map(), peer: new Map(), server: new Map() } });
  }

  record(key: string, contender: ContenderName, round: number, sample: Sample): void {
    const row = this.rows.get(key);
    if (!row) throw new Error(`no row ${key}`);
    row.samples[contender].set(round, sample);
    this.rounds = Math.max(this.rounds, round);
  }

  has(key: string): boolean {
    return this.rows.has(key);
  }

  spread(key: string, contender: ContenderName): Spread {
    const row = this.rows.get(key);
    return spreadOf(row ? [...row.samples[contender].values()].map((sample) => sample.value) : []);
  }

  /** numerator / denominator per round where both were measured, summarised. */
  ratio(key: string, numerator: ContenderName, denominator: ContenderName): Spread {
    const row = this.rows.get(key);
    if (!row) return spreadOf([]);
    const ratios: number[] = [];
    for (const [round, sample] of row.samples[numerator]) {
      const other = row.samples[denominator].get(round);
      if (other && other.value > 0) ratios.push(sample.value / other.value);
    }
    return spreadOf(ratios);
  }

  /** Every sample of `contender` in this row was complete (all drained, all delivered). */
  complete(key: string, contender: ContenderName): boolean {
    const row = this.rows.get(key);
    return row ? [...row.samples[contender].values()].every((sample) => sample.complete !== false) : false;
  }

  render(): string {
    const lines = [
      '| figure | the table it runs on | raw PostgreSQL | peer (in-process) | this server | server / peer | server / raw |',
      '|---|---|---|---|---|---|---|',
    ];
    for (const { spec, samples } of this.rows.values()) {
      const cells = CONTENDER_ORDER.map((name) => {
        const values = [...samples[name].values()];
        if (values.length === 0) return name === 'raw' ? '—' : '';
        let text = formatSpread(spec.unit, spreadOf(values.map((sample) => sample.value)));
        if (spec.unit === 'latency') {
          const p50 = spreadOf(values.map((sample) => sample.p50 ?? Number.NaN));
          text = `p99 ${text}${p50.count ? `; p50 ${formatValue('latency', p50.median)}` : ''}`;
        }
        if (name === 'raw' && spec.rawNote) text += ` (${spec.rawNote})`;
        if (values.some((sample) => sample.bounded)) text += ' †';
        if (values.some((sample) => sample.complete === false)) text += ' **incomplete**';
        return text;
      });
      lines.push(
        `| ${spec.figure} | ${spec.table} | ${cells.join(' | ')} | ${formatRatio(this.ratio(spec.key, 'server', 'peer'))} | ${formatRatio(this.ratio(spec.key, 'server', 'raw'))} |`,
      );
    }
    return lines.join('\n');
  }
}
