/** The config module's facade: the validated configuration and how it is loaded. */
export * from './app-config';
export { ConfigModule } from './config.module';
export { ConfigError } from './config.error';
export { loadConfig } from './config.loader';
export * from './connection-ref';
export { parseTokensFile, readTokensFile, readTokensText, tokenDigest } from './tokens-file.reader';
export { readTlsCredentials, type TlsCredentials } from './tls-credentials.reader';
