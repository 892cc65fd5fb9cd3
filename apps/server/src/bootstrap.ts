import { Server as HttpsServer } from 'node:https';
import { INestApplication, Logger, LoggerService, LogLevel as NestLogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module';
import { AppConfig, ConfigError, LogLevel, readTlsCredentials } from './config';
import { JsonLinesLogger } from './json-lines.logger';
import { AccessTokenRegistry, ConnectionGate, JsonRpcWsAdapter } from './rpc';

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

/**
 * Builds and starts the server; used by `main.ts` and by the tests, which run it in-process. With TLS_CERT_FILE and
 * TLS_KEY_FILE the one port speaks HTTPS (and `wss://`), otherwise plain HTTP.
 */
export async function startServer(
  config: AppConfig,
  logger: LoggerService = createLogger(config.logLevel, config.instanceId),
): Promise<INestApplication> {
  const httpsOptions = config.tls ? readTlsCredentials(config.tls) : undefined;
  const app = await NestFactory.create(AppModule.forRoot(config), { logger, abortOnError: false, httpsOptions });
  app.useWebSocketAdapter(new JsonRpcWsAdapter(app, config, app.get(ConnectionGate), app.get(AccessTokenRegistry)));
  await app.listen(config.port, config.host);
  return app;
}

/**
 * SIGHUP: reads the tokens file and the TLS certificate and key again. Each is applied only if it is valid, otherwise
 * what is in force stays and the log says why. A new certificate serves new connections; open sockets keep theirs.
 */
export function reloadSecrets(app: INestApplication, config: AppConfig): void {
  app.get(AccessTokenRegistry).reload('SIGHUP');
  if (!config.tls) return;
  const logger = new Logger('Tls');
  try {
    (app.getHttpServer() as HttpsServer).setSecureContext(readTlsCredentials(config.tls));
    logger.log(`SIGHUP: certificate and key read again from ${config.tls.certFile} and ${config.tls.keyFile}; new connections get them`);
  } catch (error) {
    const reason = error instanceof ConfigError ? error.message : (error as Error).message;
    logger.error(`SIGHUP: the certificate in force stays: ${reason}`);
  }
}
