import { StorageException, StorageExceptionCode } from '../database';
import { ConnectionRef } from '../config';
import { connectionHashTag, RedisClient } from '../redis';
import { ClaimOutcome, SessionOwner, SessionRegistryPort } from './session-registry.port';

const INSTANCES_KEY = 'mpr:instances';
const TOKEN_KEY = 'mpr:session-token';
/** Compare-and-set attempts before giving up on a connection that other instances keep changing. */
const MAX_ATTEMPTS = 8;
const RELEASE_CHUNK = 1000;

/** The hash tag keeps a connection's session key in the slot of its pub/sub channel. */
const sessionKey = (ref: ConnectionRef) => `mpr:${connectionHashTag(ref)}:session`;

// Single-key scripts, so they run on one shard of a cluster.
const SCRIPTS = {
  /** SET (or DEL when ARGV[2] is empty) only if the key still holds ARGV[1] ('' meaning absent). */
  mprCas: `
    local current = redis.call('GET', KEYS[1])
    if (current == false and ARGV[1] == '') or current == ARGV[1] then
      if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
      return 1
    end
    return 0`,
  /** DEL only if the recorded session's token is ARGV[1]. */
  mprReleaseToken: `
    local current = redis.call('GET', KEYS[1])
    if current == false then return 0 end
    -- Numeric comparison: tokens stay below 2^53, exact as doubles (tostring would round to 14 digits).
    if cjson.decode(current).token == tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) return 1 end
    return 0`,
  /** INCR, but never below ARGV[1] (microseconds now): tokens stay comparable with those of in-process mode. */
  mprNextToken: `
    local value = redis.call('INCR', KEYS[1])
    local floor = tonumber(ARGV[1])
    if value < floor then redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1] end
    return tostring(value)`,
} as const;

type Scripted = {
  mprCas(key: string, expected: string, next: string): Promise<number>;
  mprReleaseToken(key: string, token: string): Promise<number>;
  mprNextToken(key: string, floor: string): Promise<string>;
};

/**
 * Fleet-wide session records in Redis: one key per connection holding its owner, changed by compare-and-set, and
 * one sorted set of instance leases (score: expiry in ms). A recorded owner counts only while its instance's lease
 * is alive, so the sessions of a crashed instance are gone everywhere once its lease expires.
 */
export class RedisSessionRegistry extends SessionRegistryPort {
  private readonly redis: RedisClient & Scripted;

  constructor(
    client: RedisClient,
    private readonly instanceId: string,
    private readonly leaseMs: number,
  ) {
    super();
    for (const [name, lua] of Object.entries(SCRIPTS)) client.defineCommand(name, { numberOfKeys: 1, lua });
    this.redis = client as RedisClient & Scripted;
  }

  nextToken(): Promise<number> {
    return this.guard(async () => Number(await this.redis.mprNextToken(TOKEN_KEY, String(Date.now() * 1000))));
  }

  claim(ref: ConnectionRef, owner: SessionOwner, reclaim: boolean): Promise<ClaimOutcome> {
    return this.guard(async () => {
      const key = sessionKey(ref);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const raw = await this.redis.get(key);
        const current = await this.live(raw);
        if (reclaim && current && current.sessionId !== owner.sessionId) return { ok: false } as const;
        if ((await this.redis.mprCas(key, raw ?? '', JSON.stringify(owner))) === 1) return { ok: true, previous: current } as const;
      }
      throw new StorageException(
        StorageExceptionCode.Unavailable,
        `Session registry: connection ${ref.connectionId} of tenant ${ref.tenant} keeps changing`,
      );
    });
  }

  get(ref: ConnectionRef): Promise<SessionOwner | undefined> {
    return this.guard(async () => this.live(await this.redis.get(sessionKey(ref))));
  }

  remove(ref: ConnectionRef, sessionId?: string): Promise<SessionOwner | undefined> {
    return this.guard(async () => {
      const key = sessionKey(ref);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        const raw = await this.redis.get(key);
        if (raw === null) return undefined;
        const current = await this.live(raw);
        if (current && sessionId !== undefined && current.sessionId !== sessionId) return undefined;
        // A dead owner's record is removed too, but reported as nothing removed.
        if ((await this.redis.mprCas(key, raw, '')) === 1) return current;
      }
      throw new StorageException(
        StorageExceptionCode.Unavailable,
        `Session registry: connection ${ref.connectionId} of tenant ${ref.tenant} keeps changing`,
      );
    });
  }

  release(sessions: { ref: ConnectionRef; token: number }[]): Promise<void> {
    return this.guard(async () => {
      for (let start = 0; start < sessions.length; start += RELEASE_CHUNK) {
        await Promise.all(
          sessions.slice(start, start + RELEASE_CHUNK).map(({ ref, token }) => this.redis.mprReleaseToken(sessionKey(ref), String(token))),
        );
      }
    });
  }

  renewLease(): Promise<number> {
    return this.guard(async () => {
      // The expiry is fixed before the command leaves: whenever (and whether) the answer comes, the lease the fleet
      // sees ends then at the latest, so measuring the lease from here never overstates it.
      const expiresAt = Date.now() + this.leaseMs;
      await this.redis.zadd(INSTANCES_KEY, expiresAt, this.instanceId);
      return expiresAt;
    });
  }

  confirm(sessions: { ref: ConnectionRef; token: number }[]): Promise<ConnectionRef[]> {
    return this.guard(async () => {
      const confirmed: ConnectionRef[] = [];
      for (let start = 0; start < sessions.length; start += RELEASE_CHUNK) {
        const chunk = sessions.slice(start, start + RELEASE_CHUNK);
        const records = await Promise.all(chunk.map(({ ref }) => this.redis.get(sessionKey(ref))));
        chunk.forEach(({ ref, token }, index) => {
          const raw = records[index];
          const owner = raw === null ? undefined : (JSON.parse(raw) as SessionOwner);
          if (owner?.instanceId === this.instanceId && owner.token === token) confirmed.push(ref);
        });
      }
      return confirmed;
    });
  }

  retire(): Promise<void> {
    return this.guard(async () => {
      await this.redis.zrem(INSTANCES_KEY, this.instanceId);
    });
  }

  takeExpiredInstances(): Promise<string[]> {
    return this.guard(async () => {
      const expired = (await this.redis.zrangebyscore(INSTANCES_KEY, '-inf', Date.now())).filter((id) => id !== this.instanceId);
      const taken: string[] = [];
      for (const id of expired) if ((await this.redis.zrem(INSTANCES_KEY, id)) === 1) taken.push(id);
      return taken;
    });
  }

  private async live(raw: string | null): Promise<SessionOwner | undefined> {
    if (raw === null) return undefined;
    const owner = JSON.parse(raw) as SessionOwner;
    if (owner.instanceId === this.instanceId) return owner;
    const expiry = await this.redis.zscore(INSTANCES_KEY, owner.instanceId);
    return expiry !== null && Number(expiry) > Date.now() ? owner : undefined;
  }

  /** Redis trouble surfaces as the retryable storage-unavailable error, like a PostgreSQL outage. */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof StorageException) throw error;
      throw new StorageException(StorageExceptionCode.Unavailable, `Session registry unavailable: ${(error as Error).message}`, error);
    }
  }
}
