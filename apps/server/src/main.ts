import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { startServer, createLogger } from './bootstrap';
import { loadConfig } from './config/config.loader';
import { ConfigError } from './config/config.error';

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
  const logger = createLogger(config.logLevel);
  const app = await startServer(config, logger);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${signal} received: draining and shutting down`, 'Main');
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error(`Shutdown failed: ${(error as Error).stack ?? String(error)}`, 'Main');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  logger.log(`Listening on ${config.host}:${config.port} (WebSocket at /, GET /health, GET /metrics)`, 'Main');
}

main().catch((error: unknown) => {
  createLogger('error').error(`Failed to start: ${(error as Error).stack ?? String(error)}`, 'Main');
  process.exit(1);
});
