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
  /** Unique per session object: tells messages claimed for this session from those of a replaced one. */
  generation: number;
}

let nextGeneration = 1;

/**
 * Who holds each connection's live session, and live delivery to that holder. One holder per connection:
 * a newer session replaces an older one, whichever socket held it.
 */
@Injectable()
export class LiveSessionService implements OnModuleInit {
  private readonly logger = new Logger(LiveSessionService.name);
  private readonly sessions = new Map<string, LiveSession>();
  private readonly byHolder = new Map<SessionHolder, Set<string>>();

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
      const writable = session !== undefined && session.holder.isOpen && session.holder.bufferedAmount <= this.config.maxSocketBufferBytes;
      return writable ? session.generation : undefined;
    });
  }

  /**
   * Makes `holder` the holder of the connection's session. With `reclaim`, succeeds only when no session or
   * the same `sessionId` is held; otherwise returns false and changes nothing.
   */
  async add(connectionId: string, sessionId: string, reclaim: boolean, holder: SessionHolder): Promise<boolean> {
    const previous = this.sessions.get(connectionId);
    if (reclaim && previous && previous.sessionId !== sessionId) return false;
    const session: LiveSession = { connectionId, sessionId, holder, generation: nextGeneration++ };
    this.put(session, previous);
    try {
      if (!previous) await this.pubsub.subscribe(connectionId);
      // What was in flight to the former holder (or to this one before a reconnect) is pending again.
      await this.queue.releaseAll(connectionId);
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
    await this.end(session);
    return true;
  }

  /** The holder's socket closed or stopped answering: every session it held ends. */
  async endHolder(holder: SessionHolder): Promise<void> {
    const connectionIds = [...(this.byHolder.get(holder) ?? [])];
    await Promise.all(
      connectionIds.map(async (connectionId) => {
        const session = this.sessions.get(connectionId);
        if (session?.holder !== holder) return;
        await this.end(session).catch((error: unknown) => {
          // The messages stay sending and come back at the redelivery timeout: late, never lost.
          this.logger.warn(`Ending session of connection ${connectionId} failed: ${(error as Error).message}`);
        });
      }),
    );
  }

  get size(): number {
    return this.sessions.size;
  }

  private put(session: LiveSession, replaced: LiveSession | undefined): void {
    if (replaced) this.byHolder.get(replaced.holder)?.delete(replaced.connectionId);
    this.sessions.set(session.connectionId, session);
    let held = this.byHolder.get(session.holder);
    if (!held) this.byHolder.set(session.holder, (held = new Set()));
    held.add(session.connectionId);
    this.metrics.liveSessions.set(this.sessions.size);
  }

  private drop(session: LiveSession): void {
    this.sessions.delete(session.connectionId);
    const held = this.byHolder.get(session.holder);
    held?.delete(session.connectionId);
    if (held && held.size === 0) this.byHolder.delete(session.holder);
    this.metrics.liveSessions.set(this.sessions.size);
  }

  private async end(session: LiveSession): Promise<void> {
    this.drop(session);
    await this.pubsub.unsubscribe(session.connectionId);
    await this.queue.releaseAll(session.connectionId);
  }

  /**
   * Pushes newly available messages to the holder: claims those still pending (pending → sending, so a
   * concurrent take or a second notification cannot also get them), then sends them. A holder whose socket
   * is not draining gets nothing: its messages stay pending for a later take instead of piling up here.
   */
  private async deliver(event: MessagesAvailableEvent): Promise<void> {
    const session = this.sessions.get(event.connectionId);
    const writable = session !== undefined && session.holder.isOpen && session.holder.bufferedAmount <= this.config.maxSocketBufferBytes;
    // Inserted sending for this very session: no claim needed. For a session that ended or was replaced since
    // (its successor's releaseAll may already have run), or a holder now congested: pending again at once.
    const preclaimed = event.messages.filter((message) => message.claimedFor !== undefined && writable && message.claimedFor === session.generation);
    const stale = event.messages.filter((message) => message.claimedFor !== undefined && !preclaimed.includes(message));
    const unclaimed = event.messages.filter((message) => message.claimedFor === undefined);
    if (stale.length > 0) {
      await this.queue.release(event.connectionId, stale.map((message) => message.id)).catch((error: unknown) =>
        this.logger.warn(`Releasing messages of ${event.connectionId} failed (they return at the timeout): ${(error as Error).message}`),
      );
    }
    if (!writable) return;
    let claimed: StoredMessage[] = [];
    if (unclaimed.length > 0) {
      try {
        claimed = await this.queue.claim(event.connectionId, unclaimed);
      } catch (error) {
        this.logger.warn(`Live delivery to connection ${event.connectionId} deferred to the next take: ${(error as Error).message}`);
      }
    }
    const inline = new Map(unclaimed.map((message) => [message.id, message.payload]));
    const messages: NotifiedMessage[] = [
      ...preclaimed.map((message) => ({ id: message.id, receivedAt: message.receivedAt, payload: message.payload as string })),
      ...claimed.map((row) => ({
        id: row.id,
        receivedAt: row.receivedAt.toISOString(),
        payload: (inline.get(row.id) ?? row.payload) as string,
      })),
    ];
    if (messages.length === 0) return;
    let sent = 0;
    if (this.sessions.get(event.connectionId) === session && session.holder.isOpen) {
      for (const { frame, messageCount } of buildNotificationFrames(event.connectionId, messages, this.config.maxFrameBytes)) {
        try {
          await session.holder.send(frame);
        } catch {
          break; // the socket failed; what was not sent is released below
        }
        sent += messageCount;
      }
    }
    this.metrics.messagesNotified.inc(sent);
    if (sent < messages.length) {
      await this.queue
        .release(event.connectionId, messages.slice(sent).map((message) => message.id))
        .catch((error: unknown) =>
          this.logger.warn(`Releasing undelivered messages of ${event.connectionId} failed (they return at the timeout): ${(error as Error).message}`),
        );
    }
  }
}
