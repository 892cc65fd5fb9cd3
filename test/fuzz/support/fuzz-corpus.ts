import * as fs from 'node:fs';
import * as path from 'node:path';

/** The committed corpora: test/fuzz/corpus/<target>/seeds (from the test suite's frames) and …/regressions (findings). */
export const CORPUS_ROOT = path.resolve(__dirname, '..', 'corpus');

/**
 * The fuzz targets, by name: the module that exports each (`target`), and the repository-relative source files and
 * directories whose coverage guides it. Listed here, not in the module, because the instrumentation must be in place
 * before the module (and the code it imports) loads.
 */
export const TARGETS: Record<string, { module: string; coverage: string[] }> = {
  'rpc-frames': {
    module: path.resolve(__dirname, '..', 'targets', 'rpc-frames.fuzz-target.ts'),
    coverage: ['apps/server/src/rpc', 'apps/server/src/queue/queue.service.ts', 'apps/server/src/queue/raw-json.ts'],
  },
  'rpc-params': {
    module: path.resolve(__dirname, '..', 'targets', 'rpc-params.fuzz-target.ts'),
    coverage: ['apps/server/src/rpc', 'apps/server/src/queue/queue.service.ts', 'apps/server/src/queue/raw-json.ts'],
  },
  'client-frames': {
    module: path.resolve(__dirname, '..', 'targets', 'client-frames.fuzz-target.ts'),
    coverage: ['libs/client/src/transport', 'libs/client/src/message-pickup-repository.client.ts'],
  },
};

/** Every committed input of a target: its seeds and its regressions, each with its repository-relative name. */
export function corpusOf(target: string): { name: string; input: Buffer }[] {
  const inputs: { name: string; input: Buffer }[] = [];
  for (const kind of ['seeds', 'regressions']) {
    const dir = path.join(CORPUS_ROOT, target, kind);
    if (!fs.existsSync(dir)) continue;
    for (const file of fs.readdirSync(dir).sort())
      inputs.push({ name: `${target}/${kind}/${file}`, input: fs.readFileSync(path.join(dir, file)) });
  }
  return inputs;
}

/** Saves a finding's input as a regression of the target (named by its content), so the regression suite replays it. */
export function saveRegression(target: string, input: Buffer, hash: string): string {
  const dir = path.join(CORPUS_ROOT, target, 'regressions');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `finding-${hash.slice(0, 16)}`);
  fs.writeFileSync(file, input);
  return path.relative(path.resolve(CORPUS_ROOT, '..', '..', '..'), file);
}
