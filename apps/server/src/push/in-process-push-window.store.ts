import { ConnectionRef, refKey, refOfKey } from '../config';
import { FoldedDecision, foldTtlMs, PushWindowStore } from './push-window.store';

/** Above this many entries, expired ones are swept at the next open (no timer per key). */
const SWEEP_ABOVE = 10_000;

interface Folds {
  /** refKey of the connection → latest folded message id. */
  byConnection: Map<string, string>;
  until: number;
}

/** Windows of a single instance (no Redis configured): a map of deadlines and one of folded decisions. */
export class InProcessPushWindowStore extends PushWindowStore {
  private readonly windows = new Map<string, number>();
  private readonly folds = new Map<string, Folds>();

  async openOrFold(key: string, windowMs: number, decision: FoldedDecision): Promise<boolean> {
    const now = Date.now();
    if (this.windows.size > SWEEP_ABOVE || this.folds.size > SWEEP_ABOVE) this.sweep(now);
    const until = this.windows.get(key);
    if (until === undefined || until <= now) {
      this.windows.set(key, now + windowMs);
      return true;
    }
    let folds = this.folds.get(key);
    if (!folds || folds.until <= now) {
      folds = { byConnection: new Map(), until: 0 };
      this.folds.set(key, folds);
    }
    folds.byConnection.set(refKey(decision.ref), decision.messageId);
    folds.until = now + foldTtlMs(windowMs);
    return false;
  }

  async takeFolded(key: string): Promise<FoldedDecision[]> {
    const folds = this.folds.get(key);
    this.folds.delete(key);
    if (!folds || folds.until <= Date.now()) return [];
    return [...folds.byConnection].map(([connection, messageId]) => ({ ref: refOfKey(connection), messageId }));
  }

  async clear(key: string, ref: ConnectionRef): Promise<void> {
    this.windows.delete(key);
    this.folds.get(key)?.byConnection.delete(refKey(ref));
  }

  private sweep(now: number): void {
    for (const [key, until] of this.windows) if (until <= now) this.windows.delete(key);
    for (const [key, folds] of this.folds) if (folds.until <= now) this.folds.delete(key);
  }
}
