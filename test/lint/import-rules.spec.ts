/*
 * The import rules of eslint.config.mjs bite: a server module importing one above it, a module reaching into
 * another's internals, and an import cycle all fail lint. A rule whose resolver quietly resolves nothing
 * reports nothing either, so a clean `npm run lint` alone would not show that these rules work.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

const repoRoot = path.resolve(__dirname, '../..');

interface LintMessage {
  ruleId: string | null;
  message: string;
}
interface LintResult {
  filePath: string;
  messages: LintMessage[];
}
type LintRequest = { filePath: string; text: string } | { files: string[] };

/** ESLint with the repository's configuration, in a worker thread (see eslint-api.worker.mjs). */
class RepositoryLinter {
  private readonly worker = new Worker(path.join(__dirname, 'eslint-api.worker.mjs'), { workerData: { cwd: repoRoot } });
  private readonly pending = new Map<number, { resolve: (results: LintResult[]) => void; reject: (error: Error) => void }>();
  private nextId = 0;

  constructor() {
    this.worker.on('message', (answer: { id: number; results?: LintResult[]; error?: string }) => {
      const call = this.pending.get(answer.id);
      this.pending.delete(answer.id);
      if (answer.error !== undefined) call?.reject(new Error(answer.error));
      else call?.resolve(answer.results ?? []);
    });
    this.worker.on('error', (error) => {
      for (const call of this.pending.values()) call.reject(error);
      this.pending.clear();
    });
  }

  lintText(relativePath: string, text: string): Promise<LintResult[]> {
    return this.request({ filePath: path.join(repoRoot, relativePath), text });
  }

  lintFiles(files: string[]): Promise<LintResult[]> {
    return this.request({ files });
  }

  close(): Promise<number> {
    return this.worker.terminate();
  }

  private request(request: LintRequest): Promise<LintResult[]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, ...request });
    });
  }
}

function messagesOf(results: LintResult[]): LintMessage[] {
  return results.flatMap((result) => result.messages);
}

describe('import rules', () => {
  const linter = new RepositoryLinter();
  afterAll(() => linter.close());

  it('a server module may not import a module of a layer above it (database may not import queue)', async () => {
    const results = await linter.lintText(
      'apps/server/src/database/layering-probe.ts',
      "import { QueueService } from '../queue';\n\nexport const probe = QueueService;\n",
    );
    expect(messagesOf(results)).toEqual([
      { ruleId: 'import-x/no-restricted-paths', message: expect.stringContaining('database may import only config, metrics') },
    ]);
  });

  it('a server module may not import a module beside it in its layer (queue may not import live-session)', async () => {
    const results = await linter.lintText(
      'apps/server/src/queue/layering-probe.ts',
      "import { LiveSessionService } from '../live-session';\n\nexport const probe = LiveSessionService;\n",
    );
    expect(messagesOf(results)).toEqual([
      { ruleId: 'import-x/no-restricted-paths', message: expect.stringContaining('queue may import only delivery') },
    ]);
  });

  it('a server module may import a module below it through its facade', async () => {
    const results = await linter.lintText(
      'apps/server/src/queue/facade-probe.ts',
      "import { DatabaseExecutor } from '../database';\n\nexport const probe = DatabaseExecutor;\n",
    );
    expect(messagesOf(results)).toEqual([]);
  });

  it("a server module may not reach into another module's internals", async () => {
    const results = await linter.lintText(
      'apps/server/src/queue/facade-probe.ts',
      "import { DatabaseExecutor } from '../database/database.executor';\n\nexport const probe = DatabaseExecutor;\n",
    );
    expect(messagesOf(results)).toEqual([
      { ruleId: 'import-x/no-restricted-paths', message: expect.stringContaining('through its facade') },
    ]);
  });

  it('a spec beside the code may reach into internals', async () => {
    const results = await linter.lintText(
      'apps/server/src/queue/facade-probe.spec.ts',
      "import { DatabaseExecutor } from '../database/database.executor';\n\nexport const probe = DatabaseExecutor;\n",
    );
    expect(messagesOf(results)).toEqual([]);
  });

  it('an import cycle fails lint', async () => {
    // Real files: no-cycle follows the imports on disk. In a dot-directory, which neither tsc nor jest picks
    // up (and .prettierignore names), removed again whatever happens.
    const probeDir = path.join(repoRoot, 'test/lint', `.cycle-probe-${randomUUID()}`);
    mkdirSync(probeDir);
    try {
      writeFileSync(path.join(probeDir, 'a.ts'), "import { b } from './b';\n\nexport const a = (): number => b() + 1;\n");
      writeFileSync(path.join(probeDir, 'b.ts'), "import { a } from './a';\n\nexport const b = (): number => a.length;\n");
      const results = await linter.lintFiles([path.join(probeDir, 'a.ts'), path.join(probeDir, 'b.ts')]);
      expect(messagesOf(results).map((message) => message.ruleId)).toEqual(['import-x/no-cycle', 'import-x/no-cycle']);
    } finally {
      rmSync(probeDir, { recursive: true, force: true });
    }
  });
});
