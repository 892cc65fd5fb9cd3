import { ConnectionRef, refKey } from '../config';
import { ClaimOutcome, SessionOwner, SessionRegistryPort } from './session-registry.port';

/** Single instance: the registry is this process's memory (keyed by tenant and connectionId), and this instance never expires. */
export class InProcessSessionRegistry extends SessionRegistryPort {
  private readonly owners = new Map<string, SessionOwner>();
  private lastToken = Date.now() * 1000;

  async nextToken(): Promise<number> {
    this.lastToken = Math.max(this.lastToken + 1, Date.now() * 1000);
    return this.lastToken;
  }

  async claim(ref: ConnectionRef, owner: SessionOwner, reclaim: boolean): Promise<ClaimOutcome> {
    const key = refKey(ref);
    const previous = this.owners.get(key);
    if (reclaim && previous && previous.sessionId !== owner.sessionId) return { ok: false };
    this.owners.set(key, owner);
    return { ok: true, previous };
  }

  async get(ref: ConnectionRef): Promise<SessionOwner | undefined> {
    return this.owners.get(refKey(ref));
  }

  async remove(ref: ConnectionRef, sessionId?: string): Promise<SessionOwner | undefined> {
    const key = refKey(ref);
    const owner = this.owners.get(key);
    if (!owner || (sessionId !== undefined && owner.sessionId !== sessionId)) return undefined;
    this.owners.delete(key);
    return owner;
  }

  async release(sessions: { ref: ConnectionRef; token: number }[]): Promise<void> {
    for (const { ref, token } of sessions) {
      const key = refKey(ref);
      if (this.owners.get(key)?.token === token) this.owners.delete(key);
    }
  }

  async renewLease(): Promise<number> {
    return Number.POSITIVE_INFINITY;
  }

  async confirm(sessions: { ref: ConnectionRef; token: number }[]): Promise<ConnectionRef[]> {
    return sessions.filter(({ ref, token }) => this.owners.get(refKey(ref))?.token === token).map(({ ref }) => ref);
  }

  async retire(): Promise<void> {}

  async takeExpiredInstances(): Promise<string[]> {
    return [];
  }
}
