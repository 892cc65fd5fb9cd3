import { ClaimOutcome, SessionOwner, SessionRegistryPort } from './session-registry.port';

/** Single instance: the registry is this process's memory, and this instance never expires. */
export class InProcessSessionRegistry extends SessionRegistryPort {
  private readonly owners = new Map<string, SessionOwner>();
  private lastToken = Date.now() * 1000;

  async nextToken(): Promise<number> {
    this.lastToken = Math.max(this.lastToken + 1, Date.now() * 1000);
    return this.lastToken;
  }

  async claim(connectionId: string, owner: SessionOwner, reclaim: boolean): Promise<ClaimOutcome> {
    const previous = this.owners.get(connectionId);
    if (reclaim && previous && previous.sessionId !== owner.sessionId) return { ok: false };
    this.owners.set(connectionId, owner);
    return { ok: true, previous };
  }

  async get(connectionId: string): Promise<SessionOwner | undefined> {
    return this.owners.get(connectionId);
  }

  async remove(connectionId: string, sessionId?: string): Promise<SessionOwner | undefined> {
    const owner = this.owners.get(connectionId);
    if (!owner || (sessionId !== undefined && owner.sessionId !== sessionId)) return undefined;
    this.owners.delete(connectionId);
    return owner;
  }

  async release(sessions: { connectionId: string; token: number }[]): Promise<void> {
    for (const { connectionId, token } of sessions) {
      if (this.owners.get(connectionId)?.token === token) this.owners.delete(connectionId);
    }
  }

  async renewLease(): Promise<number> {
    return Number.POSITIVE_INFINITY;
  }

  async confirm(sessions: { connectionId: string; token: number }[]): Promise<string[]> {
    return sessions.filter(({ connectionId, token }) => this.owners.get(connectionId)?.token === token).map(({ connectionId }) => connectionId);
  }

  async retire(): Promise<void> {}

  async takeExpiredInstances(): Promise<string[]> {
    return [];
  }
}
