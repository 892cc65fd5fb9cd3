export * from './methods';
export * from './types';
export * from './errors';
export * from './limits';
export * from './schema-keywords';
export * from './openrpc.types';
export * from './openrpc-document';
