import { ConnectionRef } from '../config';

/** A push decision folded into an open window: its connection and the latest message id for it. */
export interface FoldedDecision {
  ref: ConnectionRef;
  messageId: string;
}

/**
 * Coalescing windows, fleet-wide when Redis is configured: at most one push per key (a device token's hash, or a
 * connection without a token) per window. Decisions that arrive while a window is open are folded into it, one
 * entry per connection (a device's token can serve several connections), which decides whether a trailing push is
 * due when the window ends.
 */
export abstract class PushWindowStore {
  /**
   * In one atomic step: opens the key's window for `windowMs` if none is open (true), or folds `decision` into the
   * open one (false). Two steps would let a window end between them and strand the fold in no window.
   */
  abstract openOrFold(key: string, windowMs: number, decision: FoldedDecision): Promise<boolean>;
  /** Takes and clears every decision folded into the key's window (any instance), one per connection. */
  abstract takeFolded(key: string): Promise<FoldedDecision[]>;
  /**
   * A live session started for `ref`: the device is awake, so the key's window closes and the connection's
   * folded decision is forgotten. Other connections' folds stay for the trailing check.
   */
  abstract clear(key: string, ref: ConnectionRef): Promise<void>;
}

/** Folds outlive their window by this much, so the instance that opened it still finds them when its timer fires. */
export function foldTtlMs(windowMs: number): number {
  return 2 * windowMs + 5_000;
}
