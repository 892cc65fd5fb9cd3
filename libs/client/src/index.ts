// The wire contract (method names, params and result types, error codes) is the protocol package's own,
// re-exported so that users of the client need no second import and get the very declarations the server uses.
export * from '@didcomm-mpr/protocol';
export * from './errors/pickup-rpc.error';
export * from './errors/pickup-forbidden.error';
export * from './errors/pickup-timeout.error';
export * from './errors/pickup-client-closed.error';
export * from './errors/pickup-connection-lost.error';
export * from './errors/pickup-frame-too-large.error';
export * from './message-pickup-repository.client';
export * from './credo-encrypted-message.types';
export { type CredoQueueAdapterOptions, type CredoQueuedMessage, type MaybePromise } from './credo-queue.adapter-core';
export * from './credo05/credo05-queue.repository';
export * from './credo06/credo06-queue-transport.repository';
export * from './live-session.wiring';
export * from './credo05/credo05-live-session.wiring';
export * from './credo06/credo06-live-session.wiring';
