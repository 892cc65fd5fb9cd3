import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { INestApplication, Logger } from '@nestjs/common';
import { createLogger, reloadSecrets, startServer } from './bootstrap';
import { AppConfig, ConfigError, loadConfig } from './config';
import { DatabaseUnreachableError } from './database';
import { JsonLinesLogger, routeProcessOutputTo } from './json-lines.logger';
import { InstanceLifecycle } from './lifecycle';

/** The embedded PostgreSQL while it runs (only without DATABASE_URL). */
interface EmbeddedDatabase {
  url: string;
  stop: () => Promise<void>;
}

/**
 * Without DATABASE_URL the server runs its own PostgreSQL. The runner is loaded here and only here, so a server
 * given DATABASE_URL (and the production image, which does not ship it) never loads it.
 */
async function startEmbeddedDatabase(config: AppConfig): Promise<EmbeddedDatabase> {
  const logger = new Logger('Database');
  let embedded: typeof import('@didcomm-mpr/embedded-postgres');
  try {
    embedded = await import('@didcomm-mpr/embedded-postgres');
  } catch (error) {
    if ((error as { code?: string }).code !== 'MODULE_NOT_FOUND') throw error;
    throw new ConfigError('DATABASE_URL', 'is required: this build does not include the embedded PostgreSQL (the production image)');
  }
  const { EmbeddedPostgresRunner } = embedded;
  const runner = new EmbeddedPostgresRunner({
    dataDir: config.dataDir,
    port: config.embeddedPostgresPort,
    database: 'message_pickup',
    log: (level, message) => {
      if (level === 'error') logger.error(message);
      else if (level === 'warn') logger.warn(message);
      else if (level === 'info') logger.log(message);
      else logger.debug(message);
    },
  });
  const url = await runner.start();
  logger.log(`Embedded PostgreSQL started with its data in ${config.dataDir}`);
  return {
    url,
    stop: async () => {
      await runner.stop();
      logger.log('Embedded PostgreSQL stopped');
    },
  };
}

async function main(): Promise<void> {
  // A .env file in the working directory fills in variables the environment does not set.
  const envFile = process.env.ENV_FILE ?? '.env';
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      createLogger('error').error(error.message, 'Config');
      process.exit(78); // EX_CONFIG
    }
    throw error;
  }
  const logger = createLogger(config.logLevel, config.instanceId);
  Logger.overrideLogger(logger);
  routeProcessOutputTo(logger);
  startupLogger = logger;
  let embedded: EmbeddedDatabase | undefined;
  try {
    embedded = config.databaseUrl ? undefined : await startEmbeddedDatabase(config);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    logger.error(error.message, 'Config');
    process.exit(78); // EX_CONFIG
  }
  let app: INestApplication;
  try {
    app = await startServer(embedded ? { ...config, databaseUrl: embedded.url } : config, logger);
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${signal} received: draining and shutting down`, 'Main');
    // Not ready from this moment (GET /health/ready answers 503, new sockets and requests are refused), before the
    // shutdown hooks run.
    app.get(InstanceLifecycle).beginDraining();
    // The embedded PostgreSQL goes last: the application's pool closes first.
    app
      .close()
      .then(() => embedded?.stop())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error(`Shutdown failed: ${(error as Error).stack ?? String(error)}`, 'Main');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // Without a handler SIGHUP would end the process: here it reloads the tokens file and the TLS certificate.
  process.on('SIGHUP', () => {
    if (!stopping) reloadSecrets(app, config);
  });
  const scheme = config.tls ? 'HTTPS, WebSocket at wss://…/' : 'HTTP, WebSocket at ws://…/';
  logger.log(`Listening on ${config.host}:${config.port} (${scheme}, GET /health, /health/live, /health/ready, /metrics)`, 'Main');
}

/** The configured logger once the configuration is read (a failure before that is logged at the error level). */
let startupLogger: JsonLinesLogger | undefined;

main().catch((error: unknown) => {
  const logger = startupLogger ?? createLogger('error');
  // An unreachable database is an operator's matter, said in one line naming host and port; anything else is a bug.
  if (error instanceof DatabaseUnreachableError) logger.fatal(`Failed to start: ${error.message}`, 'Main');
  else logger.fatal(`Failed to start: ${(error as Error).stack ?? String(error)}`, 'Main');
  process.exit(1);
});
