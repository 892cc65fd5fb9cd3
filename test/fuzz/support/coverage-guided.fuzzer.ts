import * as fs from 'node:fs';
import { FuzzHarness } from './fuzz-target';
import { JsonAwareMutator, Random } from './json-aware.mutator';
import { SourceCoverage } from './source-coverage.instrumenter';

export interface FuzzerOptions {
  harness: FuzzHarness;
  coverage: SourceCoverage;
  seeds: Buffer[];
  dictionary: string[];
  durationMs: number;
  /** An input whose handling takes longer than this is a hang. */
  execTimeoutMs: number;
  maxInputBytes: number;
  seed: number;
  /** Each input is written here before it runs: if the process dies or hangs, the parent knows which one. */
  currentInputFile: string;
}

export interface FuzzFindingRecord {
  input: Buffer;
  kind: 'crash' | 'hang' | 'unhandled-rejection' | 'uncaught-exception';
  message: string;
}

export interface FuzzRunStats {
  executions: number;
  corpus: number;
  seeds: number;
  durationMs: number;
  findings: FuzzFindingRecord[];
}

class Hang extends Error {}

/**
 * A coverage-guided fuzzer in the manner of libFuzzer, in-process: keep a corpus (the seeds first), take an entry,
 * mutate it, run it, and keep the result when it reached new coverage (a counter of the target's sources, or a new
 * hit-count class of one). Stops at the time limit or at the first finding. Unhandled rejections and uncaught
 * exceptions raised while an input runs are findings of that input (checked after one turn of the event loop).
 */
export class CoverageGuidedFuzzer {
  private readonly random: Random;
  private readonly mutator: JsonAwareMutator;
  private readonly corpus: Buffer[] = [];
  private executions = 0;
  private stray: { kind: FuzzFindingRecord['kind']; message: string } | undefined;
  private readonly fd: number;

  constructor(private readonly options: FuzzerOptions) {
    this.random = new Random(options.seed);
    this.mutator = new JsonAwareMutator(this.random, options.dictionary.length > 0 ? options.dictionary : ['x'], options.maxInputBytes);
    this.fd = fs.openSync(options.currentInputFile, 'w');
  }

  async run(): Promise<FuzzRunStats> {
    const started = Date.now();
    const findings: FuzzFindingRecord[] = [];
    const onRejection = (reason: unknown) => (this.stray ??= { kind: 'unhandled-rejection', message: describe(reason) });
    const onException = (error: unknown) => (this.stray ??= { kind: 'uncaught-exception', message: describe(error) });
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    try {
      const seeds = this.options.seeds.length > 0 ? this.options.seeds : [Buffer.from('{}')];
      for (const seed of seeds) {
        const finding = await this.execute(seed);
        if (finding) return this.stats(started, [finding]);
        this.corpus.push(seed);
        this.options.coverage.collect();
      }
      while (Date.now() - started < this.options.durationMs) {
        const parent = this.choose();
        const input = this.mutator.mutate(parent, this.random.pick(this.corpus));
        const finding = await this.execute(input);
        if (finding) {
          findings.push(finding);
          break;
        }
        if (this.options.coverage.collect()) this.corpus.push(input);
      }
      return this.stats(started, findings);
    } finally {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
      fs.closeSync(this.fd);
    }
  }

  /** Newer corpus entries (deeper coverage) a little more often than old ones. */
  private choose(): Buffer {
    const n = this.corpus.length;
    return this.random.chance(0.5) ? this.corpus[n - 1 - this.random.below(Math.min(n, 64))] : this.random.pick(this.corpus);
  }

  private async execute(input: Buffer): Promise<FuzzFindingRecord | undefined> {
    this.executions++;
    fs.ftruncateSync(this.fd, 0);
    fs.writeSync(this.fd, input, 0, input.length, 0);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.options.harness.run(input),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(() => reject(new Hang(`no answer within ${this.options.execTimeoutMs} ms`)), this.options.execTimeoutMs)),
        ),
      ]);
    } catch (error) {
      return { input, kind: error instanceof Hang ? 'hang' : 'crash', message: describe(error) };
    } finally {
      clearTimeout(timer);
    }
    // Rejections nobody handled are reported once the microtasks of this turn ran: give them that turn.
    await new Promise((resolve) => setImmediate(resolve));
    const stray = this.stray;
    this.stray = undefined;
    return stray && { input, ...stray };
  }

  private stats(started: number, findings: FuzzFindingRecord[]): FuzzRunStats {
    return {
      executions: this.executions,
      corpus: this.corpus.length,
      seeds: this.options.seeds.length,
      durationMs: Date.now() - started,
      findings,
    };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ''}` : String(error);
}
