import { Logger } from '@nestjs/common';
import Redis, { Cluster } from 'ioredis';
import { RedisConfig } from '../config';
import { MetricsService } from '../metrics';
import { createRedisClient, RedisClient, RedisRole } from './redis-client.factory';
import { RedisCommandGuard } from './redis-command.guard';

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
/** While a connection is silent (its last command timed out), how often a PING checks whether it answers again. */
const STALL_PROBE_INTERVAL_MS = 250;

export interface RedisConnectionsOptions {
  /** Deadline of every command, from the moment it is issued (REDIS_COMMAND_TIMEOUT_MS). */
  commandTimeoutMs?: number;
  /**
   * Commands of one connection waiting for an answer at once; more are refused at once. Far above what a healthy
   * Redis ever has waiting (a round trip's worth of commands), far below what would strain memory.
   */
  maxInFlight?: number;
  metrics?: MetricsService;
}

interface Connection {
  client: RedisClient;
  guard: RedisCommandGuard;
  /** Set while a PING checks whether the silent connection answers again. */
  probe?: NodeJS.Timeout;
}

/**
 * This instance's Redis connections, one node or a cluster (with its NAT map), shared by pub/sub, the session
 * registry and the push windows: one connection for commands and one (on a cluster, one per master) in subscriber
 * mode, each made on first use. Every client gets an error listener that logs each distinct error once per outage
 * (ioredis emits one per failed attempt and per shard). Closed when the application shuts down, after the modules
 * that use it.
 *
 * Every command of every user has a deadline and every connection a bound on the commands waiting for an answer
 * (`RedisCommandGuard`), here and nowhere else: a stalled network then costs a caller at most the deadline, and the
 * users see one kind of failure for an unreachable and a silent Redis. A connection whose last command timed out
 * counts as not ready (`/health` says degraded) until it answers again: a PING checks four times a second.
 */
export class RedisConnections {
  private readonly logger = new Logger('Redis');
  private readonly connections = new Map<RedisRole, Connection>();
  private readonly commandTimeoutMs: number;
  private readonly maxInFlight: number;
  private closed = false;

  constructor(
    readonly config: Exclude<RedisConfig, { mode: 'none' }>,
    /** Prefix of the connection names (CLIENT LIST), e.g. `mpr-<instance id>`. */
    private readonly connectionName: string,
    private readonly options: RedisConnectionsOptions = {},
  ) {
    this.commandTimeoutMs = options.commandTimeoutMs ?? 2000;
    this.maxInFlight = options.maxInFlight ?? 10_000;
  }

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

  /** Whether the connection of `role` timed out on its last command and has not answered since. */
  stalled(role: RedisRole): boolean {
    return this.connections.get(role)?.guard.stalled ?? false;
  }

  /**
   * Whether both connections are ready (and answering: none is stalled) and, on a cluster, every shard's subscriber
   * is connected.
   */
  ready(): boolean {
    if (this.closed || this.commands.status !== 'ready' || this.subscriber.status !== 'ready') return false;
    if (this.stalled('commands') || this.stalled('subscriber')) return false;
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
    for (const connection of this.connections.values()) clearInterval(connection.probe);
    await Promise.all([...this.connections.values()].map(({ client }) => quit(client)));
  }

  private client(role: RedisRole): RedisClient {
    const existing = this.connections.get(role);
    if (existing) return existing.client;
    const client = createRedisClient(this.config, role, this.connectionName, this.commandTimeoutMs);
    const metrics = this.options.metrics;
    const connection: Connection = {
      client,
      guard: new RedisCommandGuard(this.commandTimeoutMs, this.maxInFlight, {
        inFlight: (count) => metrics?.redisCommandsInFlight.set({ connection: role }, count),
        timedOut: (command) => {
          metrics?.redisCommandTimeouts.inc({ connection: role });
          if (!connection.probe) this.watchStalled(role, connection, command);
        },
        refused: () => metrics?.redisCommandsRefused.inc({ connection: role }),
      }),
    };
    connection.guard.install(client);
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
    this.connections.set(role, connection);
    return client;
  }

  /**
   * A command timed out: Redis, or the network to it, went silent. Logged once; a PING (itself under the deadline)
   * checks four times a second until one is answered, so that `ready()` turns true again even when nothing else
   * is sent meanwhile.
   */
  private watchStalled(role: RedisRole, connection: Connection, command: string): void {
    if (this.closed) return;
    const since = Date.now();
    this.logger.warn(
      `Redis ${role}: ${command.toUpperCase()} unanswered for ${this.commandTimeoutMs} ms; calls that need Redis fail until it answers again`,
    );
    let probing = false;
    connection.probe = setInterval(() => {
      if (!connection.guard.stalled || this.closed) {
        clearInterval(connection.probe);
        connection.probe = undefined;
        if (!this.closed) this.logger.log(`Redis ${role} answers again after ${Date.now() - since} ms`);
        return;
      }
      if (probing) return;
      probing = true;
      // A failed probe is the expected answer while the silence lasts; the next tick tries again.
      connection.client.ping().then(
        () => (probing = false),
        () => (probing = false),
      );
    }, STALL_PROBE_INTERVAL_MS);
    connection.probe.unref();
  }
}

/** QUIT when connected (bounded: a stalled server must not hold up shutdown), then drop the connection. */
async function quit(client: RedisClient): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, QUIT_TIMEOUT_MS)));
    await Promise.race([
      client.quit().then(
        () => undefined,
        () => undefined,
      ),
      timeout,
    ]);
    clearTimeout(timer);
  }
  client.disconnect();
}
