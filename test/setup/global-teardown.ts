import { rmSync } from 'node:fs';
import type { EmbeddedPostgresRunner } from '../../libs/embedded-postgres/src';

export default async function globalTeardown(): Promise<void> {
  const embedded = (globalThis as { __embeddedPostgres?: { runner: EmbeddedPostgresRunner; dataDir: string } }).__embeddedPostgres;
  if (!embedded) return;
  await embedded.runner.stop();
  rmSync(embedded.dataDir, { recursive: true, force: true });
}
