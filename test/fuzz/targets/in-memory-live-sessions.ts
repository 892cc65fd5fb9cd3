import { ConnectionRef, refKey } from '../../../apps/server/src/config';
import type { SessionHolder } from '../../../apps/server/src/delivery';

/**
 * A thin in-memory stand-in for the live-session service (one instance, no registry, no delivery) for fuzzing the RPC
 * layer: the three calls the dispatcher makes, with their contract (a newer session replaces an older one; `reclaim`
 * succeeds only for no session or the same sessionId; a removal by sessionId removes only that session).
 */
export class InMemoryLiveSessions {
  private readonly sessions = new Map<string, string>();

  async add(ref: ConnectionRef, sessionId: string, reclaim: boolean, _holder: SessionHolder): Promise<boolean> {
    const connectionId = refKey(ref);
    const held = this.sessions.get(connectionId);
    if (reclaim && held !== undefined && held !== sessionId) return false;
    if (this.sessions.size >= 1_000) this.sessions.clear();
    this.sessions.set(connectionId, sessionId);
    return true;
  }

  async isHeld(ref: ConnectionRef): Promise<boolean> {
    return this.sessions.has(refKey(ref));
  }

  async remove(ref: ConnectionRef, sessionId?: string): Promise<boolean> {
    const connectionId = refKey(ref);
    const held = this.sessions.get(connectionId);
    if (held === undefined || (sessionId !== undefined && held !== sessionId)) return false;
    this.sessions.delete(connectionId);
    return true;
  }
}
