/*
 * @didcomm-mpr/test-kit: what the tests (test/) and the benchmark (bench/) share to reach the server and to stand
 * in for what it talks to. It never imports the application: the in-process server of the tests
 * (test/support/test-server.ts) stays with them.
 */

// JSON-RPC over WebSocket
export * from './json-rpc.types';
export * from './json-rpc-ws.client';
export * from './rpc-call.error';
export * from './rpc-transport.error';
export * from './websocket-upgrade.probe';

// The server as a child process, and readings of it
export * from './repository.paths';
export * from './typescript-source.program';
export * from './server-process.launcher';
export * from './process-stats.probe';
export * from './forced-gc.probe';
export * from './server-metrics.probe';
export { findFreePort } from '@didcomm-mpr/embedded-postgres';

// Access: tokens files for the server's AUTH_TOKENS_FILE
export * from './tokens-file.writer';

// PostgreSQL and Redis for tests
export * from './test-database.factory';
export * from './tcp.proxy';
export * from './replicated-postgres.launcher';
export * from './redis-servers.launcher';
export * from './redis-cluster.slots';

// Fake push services
export * from './recorded-requests.log';
export * from './self-signed.certificate';
export * from './fake-fcm-loopback.agent';
export * from './fake-fcm.server';
export * from './fake-apns.server';
export * from './fake-webhook.server';
export * from './fake-service-account.files';
