import { AddressInfo } from 'node:net';
import { INestApplication } from '@nestjs/common';
import { startServer } from '../../apps/server/src/bootstrap';
import { AppConfig } from '../../apps/server/src/config/app-config';
import { loadConfig } from '../../apps/server/src/config/config.loader';
import { createTestDatabase } from '@didcomm-mpr/test-kit';
import { ConsoleLogger, LogLevel } from '@nestjs/common';

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
 * Keeps the server's error, warn and log lines (as `level context: message`) for a test to read; prints only what
 * the plain test logger prints. (Its levels must include these: Nest forwards only the levels its logger enables.)
 */
class RecordingLogger extends ConsoleLogger {
  constructor(
    private readonly lines: string[],
    private readonly printed: readonly string[],
  ) {
    super({ json: true, logLevels: ['fatal', 'error', 'warn', 'log', ...(printed.includes('debug') ? (['debug'] as const) : [])] });
  }

  override error(message: unknown, ...rest: unknown[]): void {
    this.record('error', message, rest);
    super.error(message, ...rest);
  }

  override warn(message: unknown, ...rest: unknown[]): void {
    this.record('warn', message, rest);
    super.warn(message, ...rest);
  }

  override log(message: unknown, ...rest: unknown[]): void {
    this.record('log', message, rest);
    super.log(message, ...rest);
  }

  protected override printMessages(
    messages: unknown[],
    context?: string,
    logLevel?: LogLevel,
    writeStreamType?: 'stdout' | 'stderr',
    errorStack?: unknown,
  ): void {
    if (logLevel && this.printed.includes(logLevel)) super.printMessages(messages, context, logLevel, writeStreamType, errorStack);
  }

  private record(level: string, message: unknown, rest: unknown[]): void {
    const context = rest.length > 0 ? String(rest[rest.length - 1]) : '';
    this.lines.push(`${level} ${context}: ${String(message)}`);
  }
}

/**
 * Starts the real server in this process on a free port, on its own fresh database (or `databaseUrl`).
 * `env` takes the same variables as production, so tests exercise the real configuration path. With `logs`, the
 * server's error, warn and log lines are appended to it.
 */
export async function startTestServer(
  env: Record<string, string> = {},
  databaseUrl?: string,
  options: { logs?: string[] } = {},
): Promise<TestServer> {
  const database = databaseUrl ? { url: databaseUrl, drop: async () => undefined } : await createTestDatabase();
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', DATABASE_URL: database.url, ...env });
  const levels: LogLevel[] = process.env.TEST_LOG ? ['fatal', 'error', 'warn', 'log', 'debug'] : ['fatal'];
  const logger = options.logs ? new RecordingLogger(options.logs, levels) : new ConsoleLogger({ json: true, logLevels: levels });
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
