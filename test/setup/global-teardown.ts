import { rmSync } from 'node:fs';
import type { EmbeddedPostgresRunner } from '../../apps/server/src/database/embedded-postgres.runner';

export default async function globalTeardown(): Promise<void> {
  const embedded = (globalThis as { __embeddedPostgres?: { runner: EmbeddedPostgresRunner; dataDir: string } }).__embeddedPostgres;
  if (!embedded) return;
  await embedded.runner.stop();
  rmSync(embedded.dataDir, { recursive: true, force: true });
}
