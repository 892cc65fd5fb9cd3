import * as fs from 'node:fs';
import * as path from 'node:path';
import { createInstrumenter } from 'istanbul-lib-instrument';
import * as ts from 'typescript';

/** istanbul's per-file counters: statements, functions, and one count per branch arm. */
interface FileCoverage {
  s: Record<string, number>;
  f: Record<string, number>;
  b: Record<string, number[]>;
}

const COVERAGE_VARIABLE = '__mprFuzzCoverage__';
/** AFL's hit-count classes: a counter that moves to another class is new behaviour, not only a new line. */
const BUCKETS = [0, 1, 2, 3, 4, 8, 16, 32, 128];
const bucketOf = (hits: number) => {
  let bucket = 0;
  while (bucket + 1 < BUCKETS.length && hits >= BUCKETS[bucket + 1]) bucket++;
  return bucket;
};

/**
 * Coverage feedback for the fuzzer: the target's own source files are compiled (TypeScript, transpile only, with the
 * repository's compiler options) and instrumented with istanbul's counters as Node loads them; every other file loads
 * as usual (ts-node). After each execution `collect()` reads the counters, reports whether any (counter, hit-count
 * class) pair was never seen before, and zeroes them for the next execution.
 */
export class SourceCoverage {
  private readonly files: string[] = [];
  /** Every counter, flattened: its record (a file's statement or function map, or a branch's arms) and key. */
  private readonly counters: { record: Record<string, number> | number[]; key: string | number; kind: 's' | 'f' | 'b' }[] = [];
  /** Per counter, one bit per hit-count class seen (nine classes: 16 bits). */
  private seen = new Uint16Array(0);
  private ever = new Uint8Array(0);
  private indexedFiles = 0;

  /** Instruments, from now on, the `.ts` files under `roots` (repository-relative files or directories). */
  constructor(repoRoot: string, roots: string[]) {
    const prefixes = roots.map((root) => path.join(repoRoot, root));
    const wanted = (filename: string) =>
      !filename.endsWith('.spec.ts') && prefixes.some((prefix) => filename === prefix || filename.startsWith(`${prefix}${path.sep}`));
    const compilerOptions = loadCompilerOptions(path.join(repoRoot, 'tsconfig.json'));
    const instrumenter = createInstrumenter({
      coverageVariable: COVERAGE_VARIABLE,
      compact: true,
      esModules: false,
      produceSourceMap: false,
    });
    const extensions = require.extensions as NodeJS.RequireExtensions;
    const previous = extensions['.ts'];
    if (!previous) throw new Error('no loader for .ts files: run this under ts-node');
    extensions['.ts'] = (module, filename) => {
      if (!wanted(filename)) return previous(module, filename);
      const js = ts.transpileModule(fs.readFileSync(filename, 'utf8'), { compilerOptions, fileName: filename }).outputText;
      this.files.push(filename);
      (module as unknown as { _compile(code: string, filename: string): void })._compile(
        instrumenter.instrumentSync(js, filename),
        filename,
      );
    };
  }

  /** The instrumented files loaded so far. */
  get instrumented(): readonly string[] {
    return this.files;
  }

  /** Reads and zeroes every counter; true when this execution reached a (counter, hit class) never seen before. */
  collect(): boolean {
    this.index();
    let fresh = false;
    for (let i = 0; i < this.counters.length; i++) {
      const { record, key } = this.counters[i];
      const hits = (record as Record<string | number, number>)[key];
      if (hits === 0) continue;
      (record as Record<string | number, number>)[key] = 0;
      this.ever[i] = 1;
      const bit = 1 << bucketOf(hits);
      if ((this.seen[i] & bit) === 0) {
        this.seen[i] |= bit;
        fresh = true;
      }
    }
    return fresh;
  }

  /** Share of statements and branch arms of the instrumented files reached at least once. */
  summary(): { statements: string; branches: string; files: number } {
    this.index();
    let statements = 0;
    let statementsHit = 0;
    let branches = 0;
    let branchesHit = 0;
    for (let i = 0; i < this.counters.length; i++) {
      const kind = this.counters[i].kind;
      if (kind === 's') {
        statements++;
        statementsHit += this.ever[i];
      } else if (kind === 'b') {
        branches++;
        branchesHit += this.ever[i];
      }
    }
    const share = (hit: number, all: number) => `${all === 0 ? 0 : ((100 * hit) / all).toFixed(1)}% (${hit}/${all})`;
    return { statements: share(statementsHit, statements), branches: share(branchesHit, branches), files: this.files.length };
  }

  /** Counters of files loaded since the last look (a target may load modules lazily). */
  private index(): void {
    const store = (globalThis as Record<string, unknown>)[COVERAGE_VARIABLE] as Record<string, FileCoverage> | undefined;
    if (!store || this.indexedFiles === this.files.length) return;
    for (const file of this.files.slice(this.indexedFiles)) {
      const coverage = store[file];
      if (!coverage) continue;
      for (const key of Object.keys(coverage.s)) this.counters.push({ record: coverage.s, key, kind: 's' });
      for (const key of Object.keys(coverage.f)) this.counters.push({ record: coverage.f, key, kind: 'f' });
      for (const key of Object.keys(coverage.b))
        coverage.b[key].forEach((_, arm) => this.counters.push({ record: coverage.b[key], key: arm, kind: 'b' }));
    }
    this.indexedFiles = this.files.length;
    const seen = new Uint16Array(this.counters.length);
    seen.set(this.seen);
    this.seen = seen;
    const ever = new Uint8Array(this.counters.length);
    ever.set(this.ever);
    this.ever = ever;
  }
}

function loadCompilerOptions(tsconfig: string): ts.CompilerOptions {
  const { config, error } = ts.readConfigFile(tsconfig, (file) => ts.sys.readFile(file));
  if (error) throw new Error(`cannot read ${tsconfig}: ${ts.flattenDiagnosticMessageText(error.messageText, '\n')}`);
  const parsed = ts.convertCompilerOptionsFromJson(config.compilerOptions, path.dirname(tsconfig));
  return { ...parsed.options, sourceMap: false, inlineSourceMap: false, declaration: false };
}
