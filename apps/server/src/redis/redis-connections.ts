import { Logger } from '@nestjs/common';
import Redis, { Cluster } from 'ioredis';
import { RedisConfig } from '../config';
import { createRedisClient, RedisClient, RedisRole } from './redis-client.factory';

/**
 * The part of ioredis 5.9's (private) ClusterSubscriberGroup read to tell whether every shard subscriber is up.
 * ioredis reports shard subscribers only through events that say nothing of the current state, so this reads the
 * group itself; ioredis is pinned to an exact version in package.json for this reason, and this is the only place
 * that reads a private field of it.
 */
interface ShardedSubscriberGroup {
  shardedSubscribers: Map<string, { isStarted(): boolean; getInstance(): Redis | null }>;
  subscriberToSlotsIndex: Map<string, number[]>;
}

/** How long a QUIT may take at shutdown before the connection is simply dropped. */
const QUIT_TIMEOUT_MS = 1000;

/**
 * This instance's Redis connections, one node or a cluster (with its NAT map), shared by pub/sub, the session
 * registry and the push windows: one connection for commands and one (on a cluster, one per master) in subscriber
 * mode, each made on first use. Every client gets an error listener that logs each distinct error once per outage
 * (ioredis emits one per failed attempt and per shard). Closed when the application shuts down, after the modules
 * that use it.
 */
export class RedisConnections {
  private readonly logger = new Logger('Redis');
  private readonly clients = new Map<RedisRole, RedisClient>();
  private closed = false;

  constructor(
    readonly config: Exclude<RedisConfig, { mode: 'none' }>,
    /** Prefix of the connection names (CLIENT LIST), e.g. `mpr-<instance id>`. */
    private readonly connectionName: string,
  ) {}

  get isCluster(): boolean {
    return this.config.mode === 'cluster';
  }

  /** The command connection: publishes, the session registry's scripts, the push windows. */
  get commands(): RedisClient {
    return this.client('commands');
  }

  /** The subscriber connection(s): SUBSCRIBE on a single node, SSUBSCRIBE per shard on a cluster. */
  get subscriber(): RedisClient {
    return this.client('subscriber');
  }

  /** Whether both connections are ready and, on a cluster, every shard's subscriber is connected. */
  ready(): boolean {
    if (this.closed || this.commands.status !== 'ready' || this.subscriber.status !== 'ready') return false;
    if (!this.isCluster) return true;
    const group = (this.subscriber as unknown as { shardedSubscribers?: ShardedSubscriberGroup }).shardedSubscribers;
    if (!group || group.subscriberToSlotsIndex.size === 0) return false;
    for (const nodeKey of group.subscriberToSlotsIndex.keys()) {
      const shard = group.shardedSubscribers.get(nodeKey);
      if (!shard || !shard.isStarted() || shard.getInstance()?.status !== 'ready') return false;
    }
    return true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.clients.values()].map((client) => quit(client)));
  }

  private client(role: RedisRole): RedisClient {
    let client = this.clients.get(role);
    if (client) return client;
    client = createRedisClient(this.config, role, this.connectionName);
    // One listener for the client and, on a cluster, for each node connection and shard subscriber it makes, so no
    // ioredis client ever reports an error without a listener (it would print "[ioredis] Unhandled error event" on
    // stderr, outside the JSON logs). Each distinct error is logged once until the client is ready again.
    const logged = new Set<string>();
    const onError = (error: Error, node?: string) => {
      const message = node ? `${node}: ${error.message}` : error.message;
      if (logged.has(message)) return;
      logged.add(message);
      this.logger.warn(`Redis ${role}: ${message}`);
    };
    client.on('error', (error: Error) => onError(error));
    client.on('ready', () => logged.clear());
    if (client instanceof Cluster) {
      client.on('node error', (error: Error, node: string) => onError(error, node));
      client.on('nodeError', (error: Error, node: string) => onError(error, node));
      client.on('+node', (node: Redis) => node.on('error', (error: Error) => onError(error, `${node.options.host}:${node.options.port}`)));
    }
    this.clients.set(role, client);
    return client;
  }
}

/** QUIT when connected (bounded: a stalled server must not hold up shutdown), then drop the connection. */
async function quit(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, QUIT_TIMEOUT_MS)));
    await Promise.race([client.quit().then(() => undefined, () => undefined), timeout]);
    clearTimeout(timer);
  }
  client.disconnect();
}
