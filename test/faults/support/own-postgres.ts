import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { EmbeddedPostgresRunner, findFreePort } from '@didcomm-mpr/embedded-postgres';

/**
 * A PostgreSQL of our own (the embedded binaries, a temporary data directory, a fixed free loopback port so a
 * restart comes back at the same address), to stop and start under load without touching the PostgreSQL that
 * other test files share, nor the machine's own.
 */
export class OwnPostgres {
  readonly log: string[] = [];
  url = '';

  private constructor(
    private readonly runner: EmbeddedPostgresRunner,
    private readonly dataDir: string,
  ) {}

  static async start(database: string): Promise<OwnPostgres> {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'mpr-faults-pg-'));
    // mkdtemp makes it 0700; as root, the embedded server runs as the unprivileged postgres user.
    chmodSync(dataDir, 0o755);
    const port = await findFreePort();
    const log: string[] = [];
    const runner = new EmbeddedPostgresRunner({
      dataDir,
      port,
      database,
      log: (level, message) => {
        if (level === 'warn' || level === 'error') log.push(`${level}: ${message}`);
      },
    });
    const own = new OwnPostgres(runner, dataDir);
    own.log.push(...log);
    own.url = await runner.start();
    return own;
  }

  /** Fast shutdown (SIGINT: active transactions rolled back, connections cut, checkpoint). */
  stop(): Promise<void> {
    return this.runner.stop();
  }

  async restart(): Promise<void> {
    this.url = await this.runner.start();
  }

  async destroy(): Promise<void> {
    await this.runner.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
