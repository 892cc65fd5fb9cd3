import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { EmbeddedPostgresRunner } from '../../libs/embedded-postgres/src';

/**
 * One PostgreSQL for the whole run: TEST_DATABASE_URL when set, otherwise an embedded server in a temporary
 * directory. Each test file then creates its own database on it (see libs/test-kit/src/test-database.factory.ts).
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_DATABASE_URL) return;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'mpr-test-pg-'));
  // mkdtemp makes it 0700; the embedded server runs as an unprivileged user when we are root.
  chmodSync(dataDir, 0o755);
  const runner = new EmbeddedPostgresRunner({
    dataDir,
    port: 0,
    database: 'postgres',
    log: (level, message) => {
      if (level === 'error') process.stderr.write(`[embedded-postgres] ${message}\n`);
    },
  });
  process.env.TEST_DATABASE_URL = await runner.start();
  (globalThis as { __embeddedPostgres?: { runner: EmbeddedPostgresRunner; dataDir: string } }).__embeddedPostgres = { runner, dataDir };
}
