import { INestApplication, LoggerService, LogLevel as NestLogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { AppConfig, LogLevel } from './config';
import { JsonLinesLogger } from './json-lines.logger';
import { ConnectionGate, JsonRpcWsAdapter } from './rpc';

const LEVELS: Record<LogLevel, NestLogLevel[]> = {
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  verbose: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};

/** Structured JSON logs, one object per line on stdout, at the configured level, naming this instance. */
export function createLogger(level: LogLevel, instanceId?: string): JsonLinesLogger {
  return new JsonLinesLogger(LEVELS[level], instanceId);
}

/** Builds and starts the server; used by `main.ts` and by the tests, which run it in-process. */
export async function startServer(config: AppConfig, logger: LoggerService = createLogger(config.logLevel, config.instanceId)): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(config), { logger, abortOnError: false });
  app.useWebSocketAdapter(new JsonRpcWsAdapter(app, config, app.get(ConnectionGate)));
  await app.listen(config.port, config.host);
  return app;
}
