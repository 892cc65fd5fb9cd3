export * from './methods';
export * from './types';
export * from './errors';
