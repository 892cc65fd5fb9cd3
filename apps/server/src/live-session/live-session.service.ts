import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig, ConnectionRef, refKey, refLabel, refOfKey } from '../config';
import { DeliveryService, LiveSession, SessionHolder } from '../delivery';
import { PushPort } from '../push';
import { SessionRegistryPort } from '../session-registry';

/** Fencing starts this share of the lease before it ends: room for a clock that runs a little behind others'. */
const FENCE_MARGIN_SHARE = 0.1;

/**
 * Who holds each connection's live session: one holder per connection (of a tenant) across the fleet (the registry decides); a
 * newer session replaces an older one, whichever socket and instance held it. The sessions this instance's sockets
 * hold are handed to the delivery module, which sends them their messages. This service also keeps this instance's
 * lease alive and releases what instances that stopped renewing theirs had in flight.
 *
 * Fencing: the fleet counts this instance's sessions as live only while its lease is; once it has lapsed, others may
 * release their messages and hand the sessions to new holders. So when no renewal succeeded in time (Redis away, or
 * silent: a renewal that times out is a failure), this instance stops delivering to all its sessions shortly before
 * the lease ends, and logs it. After the next successful renewal it asks the registry which sessions are still its
 * own: those are served again, the others end here.
 */
@Injectable()
export class LiveSessionService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(LiveSessionService.name);
  /** Ended sessions whose registry record could not be removed yet (Redis trouble), refKey → token; retried with the lease. */
  private readonly unreleased = new Map<string, number>();
  private leaseTimer: NodeJS.Timeout | undefined;
  private leaseWork: Promise<void> | undefined;
  private leaseFailing = false;
  /** Fires when the lease is about to end with no renewal since: then delivery stops (see fencing above). */
  private fenceTimer: NodeJS.Timeout | undefined;
  private fenced = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly registry: SessionRegistryPort,
    private readonly delivery: DeliveryService,
    private readonly push: PushPort,
  ) {}

  async onModuleInit(): Promise<void> {
    // Renew three times per lease; the same tick returns the claims of instances whose lease expired.
    await this.maintainLease();
    this.leaseTimer = setInterval(
      () => {
        if (!this.leaseWork) this.leaseWork = this.maintainLease().finally(() => (this.leaseWork = undefined));
      },
      Math.max(100, Math.floor(this.config.sessionLeaseMs / 3)),
    );
    this.leaseTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.leaseTimer);
    clearTimeout(this.fenceTimer);
    await this.leaseWork;
    // The gateway ended every session before this; a failure here only means others wait out the lease.
    await this.registry
      .retire()
      .catch((error: unknown) => this.logger.warn(`Leaving the session registry failed: ${(error as Error).message}`));
  }

  /**
   * Makes `holder` the holder of the connection's session, fleet-wide. With `reclaim`, succeeds only when no
   * session or the same `sessionId` is held (anywhere); otherwise returns false and changes nothing.
   */
  async add(ref: ConnectionRef, sessionId: string, reclaim: boolean, holder: SessionHolder): Promise<boolean> {
    const token = await this.registry.nextToken();
    const outcome = await this.registry.claim(ref, { instanceId: this.config.instanceId, sessionId, token }, reclaim);
    if (!outcome.ok) return false;
    const session: LiveSession = { ref, sessionId, holder, token };
    try {
      await this.delivery.attach(session);
      // The former holder on another instance lets go (this instance ignores it: its token is newer).
      if (outcome.previous && outcome.previous.instanceId !== this.config.instanceId) {
        await this.delivery.endRemoteSessions(ref, token - 1);
      }
      // What was in flight to the former holder (or to this one before a reconnect) is pending again.
      await this.delivery.releaseForNewSession(ref, token);
      // The device is awake: the next time it goes away, its first message wakes it at once.
      this.push.sessionStarted(ref);
    } catch (error) {
      if (this.delivery.localSession(ref) === session) await this.end([session]);
      throw error;
    }
    return true;
  }

  /** Whether a session is held anywhere in the fleet. */
  async isHeld(ref: ConnectionRef): Promise<boolean> {
    return (await this.registry.get(ref)) !== undefined;
  }

  /** Removes the session, wherever it is held (only if `sessionId` matches, when given); true if one was removed. */
  async remove(ref: ConnectionRef, sessionId?: string): Promise<boolean> {
    const removed = await this.registry.remove(ref, sessionId);
    if (!removed) return false;
    const local = this.delivery.localSession(ref);
    if (local && local.token === removed.token) {
      await this.end([local], false);
      return true;
    }
    // Held through another instance: it lets go when told; its in-flight messages are released here (PostgreSQL
    // is shared), so a failure to tell it only delays its unsubscribe.
    await this.delivery
      .endRemoteSessions(ref, removed.token)
      .catch((error: unknown) =>
        this.logger.warn(`Telling the holder of ${refLabel(ref)} that its session was removed failed: ${(error as Error).message}`),
      );
    await this.delivery.releaseForEndedSessions([{ ref, token: removed.token }]);
    return true;
  }

  /** The holder's socket closed or stopped answering: every session it held ends. */
  async endHolder(holder: SessionHolder): Promise<void> {
    await this.end(this.delivery.heldBy(holder));
  }

  /** Live sessions held by this instance's sockets. */
  get size(): number {
    return this.delivery.localSessionCount;
  }

  /**
   * Ends sessions: they stop receiving at once; their registry records go (unless `inRegistry` is false: already
   * removed) and their in-flight messages go back to pending. The sessions are gone even if a release fails: a
   * registry record is retried with the lease, messages return at the redelivery timeout (late, never lost).
   */
  private async end(sessions: LiveSession[], inRegistry = true): Promise<void> {
    if (sessions.length === 0) return;
    await this.delivery.detach(sessions);
    if (inRegistry) {
      await this.registry.release(sessions).catch((error: unknown) => {
        for (const session of sessions) this.unreleased.set(refKey(session.ref), session.token);
        this.logger.warn(
          `Removing ${sessions.length} ended sessions from the registry failed, retrying with the lease: ${(error as Error).message}`,
        );
      });
    }
    await this.delivery.releaseForEndedSessions(sessions).catch((error: unknown) => {
      this.logger.warn(
        `Releasing the messages of ${sessions.length} ended sessions failed (they return at the redelivery timeout): ${(error as Error).message}`,
      );
    });
  }

  /** Lease renewal, registry releases that failed earlier, and the claims of instances that died. */
  private async maintainLease(): Promise<void> {
    try {
      await this.leaseRenewed(await this.registry.renewLease());
      if (this.unreleased.size > 0) {
        const retry = [...this.unreleased].map(([key, token]) => ({ key, ref: refOfKey(key), token }));
        await this.registry.release(retry);
        for (const { key, token } of retry) if (this.unreleased.get(key) === token) this.unreleased.delete(key);
      }
      for (const instanceId of await this.registry.takeExpiredInstances()) {
        const released = await this.delivery.releaseForDeadInstance(instanceId);
        this.logger.warn(
          `Instance ${instanceId} stopped renewing its lease: its sessions ended, ${released} in-flight messages are pending again`,
        );
      }
      if (this.leaseFailing) this.logger.log('Session lease maintenance works again');
      this.leaseFailing = false;
    } catch (error) {
      // Retried at the next tick; while Redis is away the lease may lapse, which other instances see as a crash
      // (and this one answers by fencing itself, see `fence`). Logged once per outage, not at every tick.
      if (!this.leaseFailing) this.logger.warn(`Session lease maintenance failed (retried until it works): ${(error as Error).message}`);
      this.leaseFailing = true;
    }
  }

  /** A renewal succeeded: the fence moves to the new end of the lease, and a fenced instance confirms its sessions. */
  private async leaseRenewed(expiresAt: number): Promise<void> {
    clearTimeout(this.fenceTimer);
    this.fenceTimer = undefined;
    if (Number.isFinite(expiresAt)) {
      const fenceAt = expiresAt - Math.floor(this.config.sessionLeaseMs * FENCE_MARGIN_SHARE);
      this.fenceTimer = setTimeout(() => this.fence(expiresAt), Math.max(0, fenceAt - Date.now()));
      this.fenceTimer.unref();
    }
    if (this.fenced) await this.unfence();
  }

  /** The lease is about to end unrenewed: this instance can no longer prove it holds its sessions. */
  private fence(expiresAt: number): void {
    if (this.fenced) return;
    this.fenced = true;
    const sessions = this.delivery.suspend();
    this.logger.error(
      `Session lease not renewed in time (it ends at ${new Date(expiresAt).toISOString()}): live delivery to the ${sessions} sessions held here stops ` +
        'until a renewal succeeds and the registry confirms them; their messages stay pending (takeable, and woken by push from other instances)',
    );
  }

  /**
   * The lease is renewed after a lapse. Sessions the registry still records as this instance's (same token) are served
   * again; the others were taken over or ended meanwhile and end here too (their registry records belong to others).
   * If the registry cannot answer, delivery stays stopped and the next renewal tries again.
   */
  private async unfence(): Promise<void> {
    const sessions = this.delivery.localSessions();
    const confirmed = new Set((await this.registry.confirm(sessions)).map(refKey));
    const lost = sessions.filter((session) => !confirmed.has(refKey(session.ref)));
    await this.end(lost, false);
    this.fenced = false;
    this.delivery.resume();
    this.logger.warn(
      `Session lease renewed after a lapse: ${sessions.length - lost.length} sessions confirmed and served again, ${lost.length} held elsewhere now ended here`,
    );
  }
}
