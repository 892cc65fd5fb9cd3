import { ConnectionRef } from '../config';

/** Who holds a connection's live session, fleet-wide. */
export interface SessionOwner {
  instanceId: string;
  sessionId: string;
  /** Ever-increasing across the fleet: a later session has a greater token. */
  token: number;
}

export type ClaimOutcome = { ok: true; previous: SessionOwner | undefined } | { ok: false };

/**
 * The fleet's record of live-session owners (one per connection of a tenant) and of live instances. In-process for a single
 * instance; Redis for a fleet, where a session counts only while its owner instance's lease is alive.
 */
export abstract class SessionRegistryPort {
  /** A token greater than every token issued before, fleet-wide. */
  abstract nextToken(): Promise<number>;
  /**
   * Records `owner` as the connection's holder, replacing any other. With `reclaim`, only when no live owner or
   * an owner with the same sessionId is recorded; otherwise nothing changes.
   */
  abstract claim(ref: ConnectionRef, owner: SessionOwner, reclaim: boolean): Promise<ClaimOutcome>;
  /** The live owner, if any. */
  abstract get(ref: ConnectionRef): Promise<SessionOwner | undefined>;
  /** Removes the live owner if its sessionId matches (any, when undefined); resolves with what was removed. */
  abstract remove(ref: ConnectionRef, sessionId?: string): Promise<SessionOwner | undefined>;
  /** Removes these sessions' records where they are still the recorded ones (their sockets went away). */
  abstract release(sessions: { ref: ConnectionRef; token: number }[]): Promise<void>;
  /**
   * Renews this instance's lease; resolves with the time (ms since the epoch, this instance's clock) until which the
   * fleet counts this instance's sessions as live: infinite in-process. A renewal that fails or times out proves
   * nothing: the lease then ends at the time the last successful one returned.
   */
  abstract renewLease(): Promise<number>;
  /**
   * Fencing: which of these sessions (held by this instance, with these tokens) are still the recorded ones. After
   * this instance's lease lapsed, the fleet may have handed any of them to another holder meanwhile.
   */
  abstract confirm(sessions: { ref: ConnectionRef; token: number }[]): Promise<ConnectionRef[]>;
  /** Leaves the fleet on a clean shutdown (its sessions have ended), so nobody mistakes it for a crash. */
  abstract retire(): Promise<void>;
  /** Instances whose lease expired; each is handed to exactly one caller fleet-wide. */
  abstract takeExpiredInstances(): Promise<string[]>;
}
