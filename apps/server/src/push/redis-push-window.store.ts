import { createHash } from 'node:crypto';
import { ConnectionRef, refKey, refOfKey } from '../config';
import { RedisClient } from '../redis';
import { FoldedDecision, foldTtlMs, PushWindowStore } from './push-window.store';

/** Opens the window (`SET NX PX`), or else folds the decision into the open one: one atomic step. */
const OPEN_OR_FOLD = `
if redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'NX') then return 1 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 0`;
const TAKE_FOLDED = `
local folded = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return folded`;
const CLEAR = `
redis.call('DEL', KEYS[1])
return redis.call('HDEL', KEYS[2], ARGV[1])`;

/**
 * Windows shared by the fleet through Redis, whichever instance gets there first. Keys are `mpr:push:{sha256}:w`
 * (the window) and `…:f` (a hash: the connection's tenant and id, NUL between them → latest folded message id): the
 * hash tag puts both in one cluster slot, so each Lua script touches one slot, and hashing keeps braces or odd bytes of
 * a connectionId out of the key.
 * The connection is the Redis module's shared command connection.
 */
export class RedisPushWindowStore extends PushWindowStore {
  constructor(private readonly redis: RedisClient) {
    super();
  }

  async openOrFold(key: string, windowMs: number, decision: FoldedDecision): Promise<boolean> {
    const opened = await this.redis.eval(
      OPEN_OR_FOLD,
      2,
      this.windowKey(key),
      this.foldKey(key),
      windowMs,
      refKey(decision.ref),
      decision.messageId,
      foldTtlMs(windowMs),
    );
    return opened === 1;
  }

  async takeFolded(key: string): Promise<FoldedDecision[]> {
    const flat = (await this.redis.eval(TAKE_FOLDED, 1, this.foldKey(key))) as string[];
    const folded: FoldedDecision[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) folded.push({ ref: refOfKey(flat[i]), messageId: flat[i + 1] });
    return folded;
  }

  async clear(key: string, ref: ConnectionRef): Promise<void> {
    await this.redis.eval(CLEAR, 2, this.windowKey(key), this.foldKey(key), refKey(ref));
  }

  private base(key: string): string {
    return `mpr:push:{${createHash('sha256').update(key, 'utf8').digest('hex')}}`;
  }

  private windowKey(key: string): string {
    return `${this.base(key)}:w`;
  }

  private foldKey(key: string): string {
    return `${this.base(key)}:f`;
  }
}
