import { Inject, Injectable, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { MetricsService } from '../health/metrics.service';
import { MessagesAvailableEvent, PubSubPort } from '../pubsub/pubsub.port';
import { PushPort } from '../push/push.port';
import { StoredMessage } from '../queue/message.repository';
import { QueueService } from '../queue/queue.service';
import { buildNotificationFrames, NotifiedMessage } from './notification-frames';
import { SessionHolder } from './session-holder';
import { SessionRegistryPort } from './session-registry.port';

interface LiveSession {
  connectionId: string;
  sessionId: string;
  holder: SessionHolder;
  /** From the registry, greater for every later session fleet-wide: claims carry it, releases compare it. */
  token: number;
}

/**
 * Who holds each connection's live session, and live delivery to that holder. One holder per connection across the
 * fleet (the registry decides): a newer session replaces an older one, whichever socket and instance held it. This
 * instance keeps the sessions its own sockets hold, subscribes to their channels, and keeps its lease alive.
 */
@Injectable()
export class LiveSessionService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(LiveSessionService.name);
  /** Sessions held by this instance's sockets. */
  private readonly sessions = new Map<string, LiveSession>();
  private readonly byHolder = new Map<SessionHolder, Set<string>>();
  /** Ended sessions whose registry record could not be removed yet (Redis trouble); retried with the lease. */
  private readonly unreleased = new Map<string, number>();
  private leaseTimer: NodeJS.Timeout | undefined;
  private leaseWork: Promise<void> | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly queue: QueueService,
    private readonly pubsub: PubSubPort,
    private readonly registry: SessionRegistryPort,
    private readonly metrics: MetricsService,
    private readonly push: PushPort,
  ) {}

  async onModuleInit(): Promise<void> {
    this.pubsub.onMessagesAvailable((event) => void this.deliver(event));
    this.queue.setLocalSessionLookup((connectionId) => {
      const session = this.sessions.get(connectionId);
      return session && { token: session.token, writable: this.writable(session) };
    });
    // Renew three times per lease; the same tick returns the claims of instances whose lease expired.
    await this.maintainLease();
    this.leaseTimer = setInterval(() => {
      if (!this.leaseWork) this.leaseWork = this.maintainLease().finally(() => (this.leaseWork = undefined));
    }, Math.max(100, Math.floor(this.config.sessionLeaseMs / 3)));
    this.leaseTimer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.leaseTimer);
    await this.leaseWork;
    // The gateway ended every session before this; a failure here only means others wait out the lease.
    await this.registry.retire().catch((error: unknown) => this.logger.warn(`Leaving the session registry failed: ${(error as Error).message}`));
  }

  /**
   * Makes `holder` the holder of the connection's session, fleet-wide. With `reclaim`, succeeds only when no
   * session or the same `sessionId` is held (anywhere); otherwise returns false and changes nothing.
   */
  async add(connectionId: string, sessionId: string, reclaim: boolean, holder: SessionHolder): Promise<boolean> {
    const token = await this.registry.nextToken();
    const outcome = await this.registry.claim(connectionId, { instanceId: this.config.instanceId, sessionId, token }, reclaim);
    if (!outcome.ok) return false;
    const previous = this.sessions.get(connectionId);
    const session: LiveSession = { connectionId, sessionId, holder, token };
    this.put(session, previous);
    try {
      if (!previous) await this.pubsub.subscribe(connectionId);
      // The former holder on another instance lets go (this instance ignores it: its token is newer).
      if (outcome.previous && outcome.previous.instanceId !== this.config.instanceId) {
        await this.pubsub.publish({ connectionId, messages: [], endSessionsUpTo: token - 1 });
      }
      // What was in flight to the former holder (or to this one before a reconnect) is pending again.
      await this.queue.releaseForNewSession(connectionId, token);
      // The device is awake: the next time it goes away, its first message wakes it at once.
      this.push.sessionStarted(connectionId);
    } catch (error) {
      if (this.sessions.get(connectionId) === session) await this.end([session]);
      throw error;
    }
    return true;
  }

  /** Whether a session is held anywhere in the fleet. */
  async isHeld(connectionId: string): Promise<boolean> {
    return (await this.registry.get(connectionId)) !== undefined;
  }

  /** Removes the session, wherever it is held (only if `sessionId` matches, when given); true if one was removed. */
  async remove(connectionId: string, sessionId?: string): Promise<boolean> {
    const removed = await this.registry.remove(connectionId, sessionId);
    if (!removed) return false;
    const local = this.sessions.get(connectionId);
    if (local && local.token === removed.token) {
      await this.end([local], false);
      return true;
    }
    // Held through another instance: it lets go when told; its in-flight messages are released here (PostgreSQL
    // is shared), so a failure to tell it only delays its unsubscribe.
    await this.pubsub.publish({ connectionId, messages: [], endSessionsUpTo: removed.token }).catch((error: unknown) =>
      this.logger.warn(`Telling the holder of ${connectionId} that its session was removed failed: ${(error as Error).message}`),
    );
    await this.queue.releaseForEndedSessions([{ connectionId, token: removed.token }]);
    return true;
  }

  /** The holder's socket closed or stopped answering: every session it held ends. */
  async endHolder(holder: SessionHolder): Promise<void> {
    const held = this.byHolder.get(holder);
    this.byHolder.delete(holder);
    const sessions = [...(held ?? [])].map((connectionId) => this.sessions.get(connectionId)).filter((s) => s?.holder === holder) as LiveSession[];
    await this.end(sessions);
  }

  get size(): number {
    return this.sessions.size;
  }

  private writable(session: LiveSession): boolean {
    return session.holder.isOpen && session.holder.bufferedAmount <= this.config.maxSocketBufferBytes;
  }

  private put(session: LiveSession, replaced: LiveSession | undefined): void {
    if (replaced) this.forget(replaced);
    this.sessions.set(session.connectionId, session);
    let held = this.byHolder.get(session.holder);
    if (!held) this.byHolder.set(session.holder, (held = new Set()));
    held.add(session.connectionId);
    this.metrics.liveSessions.set(this.sessions.size);
  }

  private drop(session: LiveSession): void {
    this.sessions.delete(session.connectionId);
    this.forget(session);
    this.metrics.liveSessions.set(this.sessions.size);
  }

  /** Removes the session from its holder's index, and the holder itself once it holds nothing. */
  private forget(session: LiveSession): void {
    const held = this.byHolder.get(session.holder);
    held?.delete(session.connectionId);
    if (held?.size === 0) this.byHolder.delete(session.holder);
  }

  /**
   * Ends sessions: they stop receiving at once; their registry records go (unless `inRegistry` is false: already
   * removed) and their in-flight messages go back to pending. The sessions are gone even if a release fails: a
   * registry record is retried with the lease, messages return at the redelivery timeout (late, never lost).
   */
  private async end(sessions: LiveSession[], inRegistry = true): Promise<void> {
    if (sessions.length === 0) return;
    for (const session of sessions) this.drop(session);
    await Promise.all(sessions.map((session) => (this.sessions.has(session.connectionId) ? undefined : this.pubsub.unsubscribe(session.connectionId))));
    if (inRegistry) {
      await this.registry.release(sessions).catch((error: unknown) => {
        for (const session of sessions) this.unreleased.set(session.connectionId, session.token);
        this.logger.warn(`Removing ${sessions.length} ended sessions from the registry failed, retrying with the lease: ${(error as Error).message}`);
      });
    }
    await this.queue.releaseForEndedSessions(sessions).catch((error: unknown) => {
      this.logger.warn(`Releasing the messages of ${sessions.length} ended sessions failed (they return at the redelivery timeout): ${(error as Error).message}`);
    });
  }

  /** Lease renewal, registry releases that failed earlier, and the claims of instances that died. */
  private async maintainLease(): Promise<void> {
    try {
      await this.registry.renewLease();
      if (this.unreleased.size > 0) {
        const retry = [...this.unreleased].map(([connectionId, token]) => ({ connectionId, token }));
        await this.registry.release(retry);
        for (const { connectionId, token } of retry) if (this.unreleased.get(connectionId) === token) this.unreleased.delete(connectionId);
      }
      for (const instanceId of await this.registry.takeExpiredInstances()) {
        const released = await this.queue.releaseForDeadInstance(instanceId);
        this.logger.warn(`Instance ${instanceId} stopped renewing its lease: its sessions ended, ${released} in-flight messages are pending again`);
      }
    } catch (error) {
      // Retried at the next tick; while Redis is away the lease may lapse, which other instances see as a crash.
      this.logger.warn(`Session lease maintenance failed: ${(error as Error).message}`);
    }
  }

  /**
   * Pushes newly available messages to the holder. Messages inserted already claimed for this very session
   * are sent as they are; others are claimed first (pending → sending only if still pending, so a concurrent
   * take or a second notification cannot also get them). A holder whose socket is not draining gets nothing
   * more: its messages stay (or become again) pending for a later take instead of piling up in memory here.
   */
  private async deliver(event: MessagesAvailableEvent): Promise<void> {
    const session = this.sessions.get(event.connectionId);
    if (event.endSessionsUpTo !== undefined) {
      // Taken over or removed through another instance: stop holding it here (that instance released the claims).
      if (session && session.token <= event.endSessionsUpTo) {
        this.drop(session);
        await this.pubsub.unsubscribe(event.connectionId);
      }
      return;
    }
    const writable = session !== undefined && this.writable(session);
    const preclaimed = event.messages.filter((message) => message.claimedFor !== undefined && writable && message.claimedFor === session.token);
    const stale = event.messages.filter((message) => message.claimedFor !== undefined && !preclaimed.includes(message));
    const unclaimed = event.messages.filter((message) => message.claimedFor === undefined);
    // Claimed for a session that ended or was replaced since, or whose holder is congested: pending again.
    if (stale.length > 0) await this.queue.releaseQuietly(event.connectionId, stale.map((message) => message.id));
    if (!writable) return;
    let claimed: StoredMessage[] = [];
    if (unclaimed.length > 0) {
      try {
        claimed = await this.queue.claim(event.connectionId, unclaimed, session.token);
      } catch (error) {
        this.logger.warn(`Live delivery to connection ${event.connectionId} deferred to the next take: ${(error as Error).message}`);
      }
    }
    const inline = new Map(unclaimed.map((message) => [message.id, message.payload]));
    const messages: NotifiedMessage[] = [
      ...preclaimed.map((message) => ({ id: message.id, receivedAt: message.receivedAt, payload: message.payload as string })),
      ...claimed.map((row) => ({ id: row.id, receivedAt: row.receivedAt.toISOString(), payload: (inline.get(row.id) ?? row.payload) as string })),
    ];
    if (messages.length === 0) return;
    let sent = 0;
    for (const { frame, messageCount } of buildNotificationFrames(event.connectionId, messages, this.config.maxFrameBytes)) {
      // Checked at each send, not once: many deliveries to one holder can be in flight at the same time.
      if (this.sessions.get(event.connectionId) !== session || !this.writable(session)) break;
      try {
        await session.holder.send(frame);
      } catch {
        break; // the socket failed; what was not sent is released below
      }
      sent += messageCount;
    }
    this.metrics.messagesNotified.inc(sent);
    if (sent < messages.length) await this.queue.releaseQuietly(event.connectionId, messages.slice(sent).map((message) => message.id));
  }
}
