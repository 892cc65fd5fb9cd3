import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../config/app-config';
import { MetricsService } from '../health/metrics.service';
import { MessagesAvailableEvent, PubSubPort } from '../pubsub/pubsub.port';
import { StoredMessage } from '../queue/message.repository';
import { QueueService } from '../queue/queue.service';
import { buildNotificationFrames, NotifiedMessage } from './notification-frames';
import { SessionHolder } from './session-holder';

interface LiveSession {
  connectionId: string;
  sessionId: string;
  holder: SessionHolder;
  /**
   * Ever-increasing per session (microseconds since the epoch at start, then +1), so tokens of later sessions
   * compare greater even across restarts: claims carry it, and releases spare the claims of successors.
   */
  token: number;
}

/**
 * Who holds each connection's live session, and live delivery to that holder. One holder per connection:
 * a newer session replaces an older one, whichever socket held it.
 */
@Injectable()
export class LiveSessionService implements OnModuleInit {
  private readonly logger = new Logger(LiveSessionService.name);
  private readonly sessions = new Map<string, LiveSession>();
  private readonly byHolder = new Map<SessionHolder, Set<string>>();
  private lastToken = Date.now() * 1000;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly queue: QueueService,
    private readonly pubsub: PubSubPort,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    this.pubsub.onMessagesAvailable((event) => void this.deliver(event));
    this.queue.setLocalSessionLookup((connectionId) => {
      const session = this.sessions.get(connectionId);
      return session && { token: session.token, writable: this.writable(session) };
    });
  }

  /**
   * Makes `holder` the holder of the connection's session. With `reclaim`, succeeds only when no session or
   * the same `sessionId` is held; otherwise returns false and changes nothing.
   */
  async add(connectionId: string, sessionId: string, reclaim: boolean, holder: SessionHolder): Promise<boolean> {
    const previous = this.sessions.get(connectionId);
    if (reclaim && previous && previous.sessionId !== sessionId) return false;
    const session: LiveSession = { connectionId, sessionId, holder, token: this.nextToken() };
    this.put(session, previous);
    try {
      if (!previous) await this.pubsub.subscribe(connectionId);
      // What was in flight to the former holder (or to this one before a reconnect) is pending again.
      await this.queue.releaseForNewSession(connectionId, session.token);
    } catch (error) {
      // A rejected call changes nothing: restore the former holder unless someone replaced us meanwhile.
      if (this.sessions.get(connectionId) === session) {
        this.drop(session);
        if (previous && previous.holder.isOpen) this.put(previous, undefined);
        else await this.pubsub.unsubscribe(connectionId);
      }
      throw error;
    }
    return true;
  }

  async isHeld(connectionId: string): Promise<boolean> {
    return this.sessions.has(connectionId);
  }

  /** Removes the session (only if `sessionId` matches, when given); true if one was removed. */
  async remove(connectionId: string, sessionId?: string): Promise<boolean> {
    const session = this.sessions.get(connectionId);
    if (!session || (sessionId !== undefined && session.sessionId !== sessionId)) return false;
    await this.end([session]);
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

  private nextToken(): number {
    this.lastToken = Math.max(this.lastToken + 1, Date.now() * 1000);
    return this.lastToken;
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
   * Ends sessions: they stop receiving at once; their in-flight messages go back to pending. The session is
   * gone even if that release fails (the messages then return at the redelivery timeout: late, never lost).
   */
  private async end(sessions: LiveSession[]): Promise<void> {
    if (sessions.length === 0) return;
    for (const session of sessions) this.drop(session);
    await Promise.all(sessions.map((session) => (this.sessions.has(session.connectionId) ? undefined : this.pubsub.unsubscribe(session.connectionId))));
    await this.queue.releaseForEndedSessions(sessions).catch((error: unknown) => {
      this.logger.warn(`Releasing the messages of ${sessions.length} ended sessions failed (they return at the redelivery timeout): ${(error as Error).message}`);
    });
  }

  /**
   * Pushes newly available messages to the holder. Messages inserted already claimed for this very session
   * are sent as they are; others are claimed first (pending → sending only if still pending, so a concurrent
   * take or a second notification cannot also get them). A holder whose socket is not draining gets nothing
   * more: its messages stay (or become again) pending for a later take instead of piling up in memory here.
   */
  private async deliver(event: MessagesAvailableEvent): Promise<void> {
    const session = this.sessions.get(event.connectionId);
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
