import { AddressInfo } from 'node:net';
import { INestApplication } from '@nestjs/common';
import { startServer } from '../../apps/server/src/bootstrap';
import { AppConfig } from '../../apps/server/src/config/app-config';
import { loadConfig } from '../../apps/server/src/config/config.loader';
import { createTestDatabase } from '@didcomm-mpr/test-kit';
import { ConsoleLogger } from '@nestjs/common';

export interface TestServer {
  app: INestApplication;
  config: AppConfig;
  databaseUrl: string;
  wsUrl: string;
  httpUrl: string;
  /** Closes the server (graceful shutdown), keeping the database. */
  stop: () => Promise<void>;
  /** Closes the server and drops its database. */
  close: () => Promise<void>;
}

/**
 * Starts the real server in this process on a free port, on its own fresh database (or `databaseUrl`).
 * `env` takes the same variables as production, so tests exercise the real configuration path.
 */
export async function startTestServer(env: Record<string, string> = {}, databaseUrl?: string): Promise<TestServer> {
  const database = databaseUrl ? { url: databaseUrl, drop: async () => undefined } : await createTestDatabase();
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', DATABASE_URL: database.url, ...env });
  const logger = new ConsoleLogger({ json: true, logLevels: process.env.TEST_LOG ? ['fatal', 'error', 'warn', 'log', 'debug'] : ['fatal'] });
  const app = await startServer(config, logger);
  const { port } = app.getHttpServer().address() as AddressInfo;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.close();
  };
  return {
    app,
    config,
    databaseUrl: database.url,
    wsUrl: `${config.tls ? 'wss' : 'ws'}://127.0.0.1:${port}`,
    httpUrl: `${config.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    stop,
    close: async () => {
      await stop();
      await database.drop();
    },
  };
}
