import * as path from 'node:path';

/** The repository root (this file is libs/test-kit/src/repository.paths.ts). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
/** The server's entry point in the source tree, run through ts-node in source mode. */
export const SERVER_SOURCE_ENTRY = path.join(REPO_ROOT, 'apps', 'server', 'src', 'main.ts');
/** The server's entry point as `npm run build` writes it. */
export const SERVER_BUILD_ENTRY = path.join(REPO_ROOT, 'apps', 'server', 'dist', 'main.js');
