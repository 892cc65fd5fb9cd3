/** The Redis module's facade: the shared connections of a fleet (null without Redis). */
export { RedisModule } from './redis.module';
export { RedisConnections } from './redis-connections';
export type { RedisClient } from './redis-client.factory';
export { connectionHashTag } from './connection-hash.tag';
