import { Logger, OnApplicationShutdown } from '@nestjs/common';
import Redis, { Cluster } from 'ioredis';
import { ConnectionRef } from '../config';
import { connectionHashTag, RedisClient, RedisConnections } from '../redis';
import { MessagesAvailableEvent, MessagesAvailableHandler, PubSubPort } from './pubsub.port';

export type ResubscribedHandler = (refs: ConnectionRef[]) => void;

export interface RedisPubSubOptions {
  /** How often the connection state is checked for degraded → up transitions. */
  healthCheckIntervalMs?: number;
}

/** The hash tag puts the channel in the slot of the connection's other keys: on a cluster, one shard carries it. */
export function channelOf(ref: ConnectionRef): string {
  return `mpr:${connectionHashTag(ref)}:messages`;
}
/** Channels per SUBSCRIBE/UNSUBSCRIBE command on a single node. */
const CHUNK = 1000;

/**
 * Redis transport between server instances: one channel per connection (a tenant's connectionId), subscribed only by
 * the instance that holds the connection's live session. Single node: SUBSCRIBE/PUBLISH; Redis Cluster:
 * SSUBSCRIBE/SPUBLISH (sharded pub/sub, a publish travels to the one shard that owns the channel's slot).
 *
 * Subscriptions are kept in `wanted` and sent in batches (all calls of one tick, pipelined); when a connection comes
 * back they are restored (single node: by this class on `ready`; cluster: by ioredis' sharded subscriber group, plus
 * the ones that failed meanwhile by this class) and `onResubscribed` handlers are told, so that the live-session layer
 * can catch up on messages committed while Redis was unreachable.
 *
 * Every command here has the Redis module's deadline (REDIS_COMMAND_TIMEOUT_MS): a publish or a batch of
 * subscriptions during a stalled network fails after it instead of waiting for the network.
 */
export class RedisPubSubAdapter extends PubSubPort implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisPubSubAdapter.name);
  private readonly publisher: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly isCluster: boolean;
  private handler: MessagesAvailableHandler | undefined;
  private readonly resubscribedHandlers: ResubscribedHandler[] = [];
  /** The channels this instance wants to receive, and the connection of each. */
  private readonly wanted = new Map<string, ConnectionRef>();
  /** Channels subscribed or unsubscribed since the last flush. */
  private readonly dirty = new Set<string>();
  private pendingFlush: Promise<void> | undefined;
  /** Cluster: channels whose SSUBSCRIBE / SUNSUBSCRIBE failed; sent again once every shard is back. */
  private readonly retry = new Set<string>();
  /** Single node: a restore of the subscriptions is in flight. */
  private restoring = false;
  private wasDegraded = false;
  /** Whether the connections were all up once: the first connection is not a restore. */
  private everUp = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly redis: RedisConnections,
    options: RedisPubSubOptions = {},
  ) {
    super();
    this.isCluster = redis.isCluster;
    this.publisher = redis.commands;
    this.subscriber = redis.subscriber;
    if (this.isCluster) {
      this.subscriber.on('smessage', (channel: string, message: string) => this.deliver(channel, message));
      this.subscriber.on('subscribersReady', () => this.checkHealth());
    } else {
      this.subscriber.on('message', (channel: string, message: string) => this.deliver(channel, message));
      this.subscriber.on('ready', () => void this.restoreSingle());
    }
    this.timer = setInterval(() => this.checkHealth(), options.healthCheckIntervalMs ?? 250);
    this.timer.unref();
  }

  onMessagesAvailable(handler: MessagesAvailableHandler): void {
    this.handler = handler;
  }

  /** Registers a handler told which connections' subscriptions were restored after Redis came back. */
  onResubscribed(handler: ResubscribedHandler): void {
    this.resubscribedHandlers.push(handler);
  }

  /** One PUBLISH (single node) or SPUBLISH (cluster); rejects at once, or at the command deadline, if Redis is away. */
  async publish(event: MessagesAvailableEvent): Promise<number> {
    const channel = channelOf(event.ref);
    const message = JSON.stringify(event);
    return Number(
      await (this.isCluster ? (this.publisher as Cluster).spublish(channel, message) : this.publisher.publish(channel, message)),
    );
  }

  /**
   * Resolves once the subscription is active, or, while Redis is unreachable, once it is recorded: it is then made
   * when Redis is back, and `onResubscribed` reports it.
   */
  subscribe(ref: ConnectionRef): Promise<void> {
    const channel = channelOf(ref);
    this.wanted.set(channel, ref);
    this.dirty.add(channel);
    return this.scheduleFlush();
  }

  unsubscribe(ref: ConnectionRef): Promise<void> {
    const channel = channelOf(ref);
    this.wanted.delete(channel);
    this.dirty.add(channel);
    return this.scheduleFlush();
  }

  health(): { status: 'up' | 'degraded'; mode: string } {
    return { status: this.isHealthy() ? 'up' : 'degraded', mode: this.isCluster ? 'redis-cluster' : 'redis' };
  }

  /** The connections this instance is subscribed to (or will be, once Redis is back). */
  subscriptions(): ConnectionRef[] {
    return [...this.wanted.values()];
  }

  /** Stops watching the connections; they belong to the Redis module, which closes them after this. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  private scheduleFlush(): Promise<void> {
    if (!this.pendingFlush) {
      this.pendingFlush = new Promise<void>((resolve) => {
        setImmediate(() => {
          this.pendingFlush = undefined;
          this.flush().then(resolve, (error: Error) => {
            this.logger.warn(`subscription batch failed: ${error.message}`);
            resolve();
          });
        });
      });
    }
    return this.pendingFlush;
  }

  /** Sends every subscribe/unsubscribe of the batch without waiting in between (one pipeline on the wire). */
  private async flush(): Promise<void> {
    const add: string[] = [];
    const remove: string[] = [];
    for (const channel of this.dirty) (this.wanted.has(channel) ? add : remove).push(channel);
    this.dirty.clear();
    if (this.closed || (add.length === 0 && remove.length === 0)) return;
    if (this.isCluster) {
      await this.sendSharded(add, remove);
      return;
    }
    // Single node: while disconnected nothing is sent; `restoreSingle` subscribes everything wanted on `ready`.
    if (this.subscriber.status !== 'ready') return;
    const sub = this.subscriber as Redis;
    const replies: Promise<unknown>[] = [];
    for (let i = 0; i < add.length; i += CHUNK) replies.push(sub.subscribe(...add.slice(i, i + CHUNK)));
    for (let i = 0; i < remove.length; i += CHUNK) replies.push(sub.unsubscribe(...remove.slice(i, i + CHUNK)));
    const results = await Promise.allSettled(replies);
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    // A failure means the connection dropped: the next `ready` restores the wanted set.
    if (failed) this.logger.debug(`subscribe batch: ${(failed.reason as Error).message}`);
  }

  /**
   * Cluster: one SSUBSCRIBE / SUNSUBSCRIBE per channel (channels of different slots in one command are refused with
   * CROSSSLOT), all sent at once; ioredis routes each to the shard subscriber connection of the channel's master.
   */
  private async sendSharded(add: string[], remove: string[]): Promise<void> {
    const cluster = this.subscriber as Cluster;
    const replies: Promise<unknown>[] = [];
    const send = (channel: string, command: 'ssubscribe' | 'sunsubscribe') => {
      this.retry.delete(channel);
      replies.push(
        cluster[command](channel).catch((error: Error) => {
          this.logger.debug(`${command} ${channel}: ${error.message}`);
          // Retried when every shard subscriber is back, if still (un)wanted then.
          this.retry.add(channel);
        }),
      );
    };
    for (const channel of add) send(channel, 'ssubscribe');
    for (const channel of remove) send(channel, 'sunsubscribe');
    // Each settles by its deadline at the latest; a failed one is retried once every shard is back.
    await Promise.all(replies);
  }

  /** Single node: after a (re)connection the server has no subscription of ours; subscribe everything wanted. */
  private async restoreSingle(): Promise<void> {
    if (this.closed) return;
    const channels = [...this.wanted.keys()];
    if (channels.length === 0) {
      this.checkHealth();
      return;
    }
    this.restoring = true;
    const sub = this.subscriber as Redis;
    try {
      const replies: Promise<unknown>[] = [];
      for (let i = 0; i < channels.length; i += CHUNK) replies.push(sub.subscribe(...channels.slice(i, i + CHUNK)));
      await Promise.all(replies);
    } catch (error) {
      this.logger.debug(`restoring subscriptions: ${(error as Error).message}`);
      return; // the connection dropped again: the next `ready` restores
    } finally {
      this.restoring = false;
    }
    this.wasDegraded = false;
    this.logger.log(`restored ${channels.length} subscriptions`);
    this.notifyResubscribed(channels);
  }

  private isHealthy(): boolean {
    return !this.closed && this.redis.ready() && !this.restoring;
  }

  /** Tracks degraded → up; on a cluster, then re-sends what failed meanwhile and reports the restored subscriptions. */
  private checkHealth(): void {
    if (this.closed) return;
    if (!this.isHealthy()) {
      if (this.everUp) this.wasDegraded = true;
      return;
    }
    this.everUp = true;
    if (!this.isCluster || !this.wasDegraded) return;
    this.wasDegraded = false;
    const retry = [...this.retry];
    this.retry.clear();
    if (retry.length > 0) {
      void this.sendSharded(
        retry.filter((channel) => this.wanted.has(channel)),
        retry.filter((channel) => !this.wanted.has(channel)),
      );
    }
    if (this.wanted.size > 0) this.logger.log(`Redis Cluster shard subscribers back; ${this.wanted.size} subscriptions restored`);
    this.notifyResubscribed([...this.wanted.keys()]);
  }

  /** Tells the handlers which connections' channels were restored (those still wanted). */
  private notifyResubscribed(channels: string[]): void {
    const refs = channels.map((channel) => this.wanted.get(channel)).filter((ref): ref is ConnectionRef => ref !== undefined);
    if (refs.length === 0) return;
    for (const handler of this.resubscribedHandlers) {
      try {
        handler(refs);
      } catch (error) {
        this.logger.error(`onResubscribed handler failed: ${(error as Error).message}`);
      }
    }
  }

  private deliver(channel: string, message: string): void {
    // A message that was in flight when this instance unsubscribed is not ours any more.
    if (!this.wanted.has(channel) || !this.handler) return;
    let event: MessagesAvailableEvent;
    try {
      event = JSON.parse(message) as MessagesAvailableEvent;
    } catch {
      this.logger.warn(`unreadable message on ${channel}`);
      return;
    }
    try {
      this.handler(event);
    } catch (error) {
      this.logger.error(`messages-available handler failed: ${(error as Error).message}`);
    }
  }
}
