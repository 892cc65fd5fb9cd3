// Moved to @didcomm-mpr/test-kit; kept as a re-export while test/integration still imports it from here.
export { RedisNodeProcess, startRedisCluster, startRedisSingle } from '@didcomm-mpr/test-kit';
