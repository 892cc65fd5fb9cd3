/*
 * ESLint's Node API, run in a worker thread for test/lint/import-rules.spec.ts. Jest's module sandbox cannot
 * load eslint.config.mjs (an ES module; jest would need --experimental-vm-modules for every suite), a worker
 * thread is plain Node and can.
 *
 * Request: { id, filePath, text } lints text as if it were filePath; { id, files } lints files on disk.
 * Answer: { id, results: [{ filePath, messages: [{ ruleId, message }] }] } or { id, error }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';

// The repository's own configuration. The probes exist on no disk, or outside every tsconfig, so the
// TypeScript service behind the type-aware rules could not open them; the import rules need no types.
const eslint = new ESLint({ cwd: workerData.cwd, overrideConfig: tseslint.configs.disableTypeChecked });

parentPort.on('message', async (request) => {
  try {
    const results =
      request.files !== undefined
        ? await eslint.lintFiles(request.files)
        : await eslint.lintText(request.text, { filePath: request.filePath });
    parentPort.postMessage({
      id: request.id,
      results: results.map((result) => ({
        filePath: result.filePath,
        messages: result.messages.map(({ ruleId, message }) => ({ ruleId, message })),
      })),
    });
  } catch (error) {
    parentPort.postMessage({ id: request.id, error: error instanceof Error ? error.stack : String(error) });
  }
});
