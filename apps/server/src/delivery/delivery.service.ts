import { Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { PushNotificationToken } from '@didcomm-mpr/protocol';
import { APP_CONFIG, AppConfig, ConnectionRef, refKey, refLabel } from '../config';
import { GroupCommitter, MessageRepository, ReleasedCount, StoredMessage } from '../database';
import { MetricsService } from '../metrics';
import { AvailableMessage, MessagesAvailableEvent, PubSubPort } from '../pubsub';
import { PushPort, PushRequest } from '../push';
import { LiveSession, LocalSessionTable } from './local-session.table';
import { buildNotificationFrames, NotifiedMessage } from './notification-frames';
import { SessionHolder } from './session-holder';

/** Payloads up to this size travel with the "messages available" event; larger ones are read by the holder. */
const INLINE_PAYLOAD_BYTES = 64 * 1024;
/** Sessions released per statement when many end at once (a socket holding thousands closes). */
const RELEASE_CHUNK = 1000;

/** A message the queue has just committed. */
export interface CommittedMessage {
  ref: ConnectionRef;
  id: string;
  receivedAt: Date;
  /** The stored JSON text of the payload. */
  payload: string;
  payloadBytes: number;
  /** Set when it was inserted already sending, claimed for this instance's live session with that token. */
  claimedFor?: number;
  /** The push token that came with the add, if any. */
  pushToken?: PushNotificationToken;
}

interface ClaimItem {
  ref: ConnectionRef;
  messages: AvailableMessage[];
  token: number;
}

/** What to do for a connection's messages when nobody in the fleet holds its session. */
interface Unheld {
  /** Messages inserted claimed for a session that nobody ends up delivering to: pending again now. */
  claimed: string[];
  push: PushRequest;
  /** Called when somebody does hold it (a live add's token is then remembered for later). */
  held?: () => void;
}

/**
 * Live delivery, in one place. Whenever messages become available for a connection (just committed by an add, or
 * pending again after the acknowledgement timeout) one decision is taken here: a holder on this instance gets them
 * at once; otherwise the connection's channel is published, for a holder on another instance; when nobody receives
 * the publish, the push port wakes the device. Events from other instances arrive here too.
 *
 * It also keeps the live sessions this instance's sockets hold (the live-session service decides who holds what,
 * fleet-wide) and puts messages back to pending when sessions end, are taken over, or their instance dies.
 */
@Injectable()
export class DeliveryService implements OnModuleInit {
  private readonly logger = new Logger(DeliveryService.name);
  private readonly sessions: LocalSessionTable;
  private readonly claims: GroupCommitter<ClaimItem, StoredMessage[]>;
  private publishFailing = false;
  /**
   * Fencing: this instance's session lease lapsed, so it cannot prove that it still holds any of its sessions (the
   * fleet may have handed them to others). Nothing is sent to local holders meanwhile; messages stay pending.
   */
  private suspended = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly messages: MessageRepository,
    private readonly pubsub: PubSubPort,
    private readonly push: PushPort,
    private readonly metrics: MetricsService,
  ) {
    this.sessions = new LocalSessionTable(metrics, config.maxSocketBufferBytes);
    this.claims = new GroupCommitter({
      flush: (items) => this.flushClaims(items),
      // One claim statement in flight per instance: two could lock the same rows in opposite orders.
      maxConcurrentFlushes: 1,
      maxBatchItems: 500,
      maxBatchWeight: 5000,
      weigh: (item) => item.messages.length,
    });
  }

  onModuleInit(): void {
    this.pubsub.onMessagesAvailable((event) => void this.onEvent(event));
  }

  /** Live sessions held by this instance's sockets. */
  get localSessionCount(): number {
    return this.sessions.size;
  }

  /** Every live session held by this instance's sockets. */
  localSessions(): LiveSession[] {
    return this.sessions.all();
  }

  /**
   * Stops every send to this instance's holders (the lease lapsed: see `suspended`); returns how many sessions that
   * concerns. Sessions stay attached, so that those the registry still confirms resume without a new registration.
   */
  suspend(): number {
    this.suspended = true;
    this.metrics.suspendedSessions.set(this.sessions.size);
    return this.sessions.size;
  }

  /** Sends to this instance's holders again (the lease was renewed and the sessions still held were confirmed). */
  resume(): void {
    this.suspended = false;
    this.metrics.suspendedSessions.set(0);
  }

  /** The connection's live session on this instance, if one is held here. */
  localSession(ref: ConnectionRef): LiveSession | undefined {
    return this.sessions.get(ref);
  }

  /**
   * The session token to insert a new message already claimed for, if its connection's session is held here and its
   * socket is draining: the holder then sends it without a claim statement of its own.
   */
  preclaimToken(ref: ConnectionRef, payloadBytes: number): number | undefined {
    if (payloadBytes > INLINE_PAYLOAD_BYTES || this.suspended) return undefined;
    const session = this.sessions.get(ref);
    return session && this.sessions.writable(session) ? session.token : undefined;
  }

  /** After a commit: one decision per connection of the batch, without delaying the replies. */
  committed(messages: CommittedMessage[]): void {
    const committedAt = Date.now();
    const perConnection = new Map<string, CommittedMessage[]>();
    for (const message of messages) {
      const key = refKey(message.ref);
      const group = perConnection.get(key);
      if (group) group.push(message);
      else perConnection.set(key, [message]);
    }
    for (const group of perConnection.values()) {
      const ref = group[0].ref;
      // The newest token of the batch, even if the last add came without one: it is the device's latest.
      const token = [...group].reverse().find((message) => message.pushToken !== undefined)?.pushToken;
      this.offer(
        {
          ref,
          committedAt,
          messages: group.map((message) => ({
            id: message.id,
            receivedAt: message.receivedAt.toISOString(),
            payload: message.payloadBytes <= INLINE_PAYLOAD_BYTES ? message.payload : undefined,
            claimedFor: message.claimedFor,
          })),
        },
        {
          claimed: group.filter((message) => message.claimedFor !== undefined).map((message) => message.id),
          push: { ref, messageId: group[group.length - 1].id, token, reason: 'added' },
          // Live now; the token is kept for when the device goes away (a session end may need it at once).
          held: token ? () => this.push.rememberToken(ref, token) : undefined,
        },
      );
    }
  }

  /** Makes `session` its connection's on this instance (replacing an older one here) and listens to its channel. */
  async attach(session: LiveSession): Promise<void> {
    const replaced = this.sessions.put(session);
    if (!replaced) await this.pubsub.subscribe(session.ref);
  }

  /** These sessions stop receiving at once; channels nobody here holds any more are left. */
  async detach(sessions: LiveSession[]): Promise<void> {
    const dropped = sessions.filter((session) => this.sessions.drop(session));
    await Promise.all(dropped.map((session) => (this.sessions.get(session.ref) ? undefined : this.pubsub.unsubscribe(session.ref))));
  }

  /** The sessions `holder` holds on this instance. */
  heldBy(holder: SessionHolder): LiveSession[] {
    return this.sessions.heldBy(holder);
  }

  /** Tells the instance holding the connection's session that sessions with a token up to `token` ended. */
  async endRemoteSessions(ref: ConnectionRef, token: number): Promise<void> {
    await this.pubsub.publish({ ref, messages: [], endSessionsUpTo: token });
  }

  /** A new live session (token `token`) holds the connection: what was in flight to older sessions, or taken, is pending again. */
  async releaseForNewSession(ref: ConnectionRef, token: number): Promise<void> {
    this.metrics.messagesRedelivered.inc({ reason: 'session' }, await this.messages.releaseForNewSession(ref, token));
  }

  /**
   * These sessions ended: their in-flight messages are pending again (in chunks, one statement each), and with no
   * session left anywhere the device is woken to pick them up (the push port checks).
   */
  async releaseForEndedSessions(sessions: { ref: ConnectionRef; token: number }[]): Promise<void> {
    for (let start = 0; start < sessions.length; start += RELEASE_CHUNK) {
      const connections = await this.messages.releaseForEndedSessions(sessions.slice(start, start + RELEASE_CHUNK));
      this.wakeReleased(connections, 'session');
    }
  }

  /**
   * An instance died: what was claimed through it is pending again, and the devices of those connections may need
   * a wake-up (the push port checks that no session holds them anywhere by now).
   */
  async releaseForDeadInstance(instanceId: string): Promise<number> {
    return this.wakeReleased(await this.messages.releaseForDeadInstance(instanceId), 'instance');
  }

  /** Returns timed-out sending messages to pending and announces them, so a live holder gets them again. */
  async redeliverExpired(batchSize: number): Promise<number> {
    const rows = await this.messages.releaseExpired(batchSize);
    if (rows.length === 0) return 0;
    this.metrics.messagesRedelivered.inc({ reason: 'timeout' }, rows.length);
    const perConnection = new Map<string, { ref: ConnectionRef; messages: AvailableMessage[] }>();
    for (const row of rows) {
      const key = refKey(row.ref);
      let connection = perConnection.get(key);
      if (!connection) perConnection.set(key, (connection = { ref: row.ref, messages: [] }));
      connection.messages.push({ id: row.id, receivedAt: row.receivedAt.toISOString() });
    }
    for (const { ref, messages } of perConnection.values()) {
      this.offer({ ref, messages }, { claimed: [], push: { ref, messageId: messages[messages.length - 1].id, reason: 'redelivery' } });
    }
    return rows.length;
  }

  private wakeReleased(connections: ReleasedCount[], reason: 'session' | 'instance'): number {
    let released = 0;
    for (const { ref, released: count, lastMessageId } of connections) {
      released += count;
      this.push.notify({ ref, messageId: lastMessageId, reason: 'released' });
    }
    this.metrics.messagesRedelivered.inc({ reason }, released);
    return released;
  }

  /**
   * The decision: a holder here → send; otherwise publish, for a holder elsewhere → nobody received it → the device
   * is woken. A publish failure (Redis away) loses only the instant notification: the messages stay takeable.
   */
  private offer(event: MessagesAvailableEvent, unheld: Unheld): void {
    if (!this.suspended && this.sessions.get(event.ref)) {
      unheld.held?.();
      // On a later tick, as a network transport would: the caller's replies must not wait for the send.
      setImmediate(() => void this.deliver(event));
      return;
    }
    this.pubsub.publish(event).then(
      (receivers) => {
        if (this.publishFailing) this.logger.log('Live notifications work again');
        this.publishFailing = false;
        if (receivers > 0) {
          unheld.held?.();
          return;
        }
        if (unheld.claimed.length > 0) void this.releaseQuietly(event.ref, unheld.claimed);
        this.push.notify(unheld.push);
      },
      (error: unknown) => {
        // Logged once per outage: at thousands of adds per second, a line per batch would bury everything else.
        if (!this.publishFailing) this.logger.warn(`Live notifications are failing (messages stay takeable): ${(error as Error).message}`);
        this.publishFailing = true;
        if (unheld.claimed.length > 0) void this.releaseQuietly(event.ref, unheld.claimed);
      },
    );
  }

  private async onEvent(event: MessagesAvailableEvent): Promise<void> {
    if (event.endSessionsUpTo === undefined) return this.deliver(event);
    // Taken over or removed through another instance: stop holding it here (that instance released the claims).
    const session = this.sessions.get(event.ref);
    if (session && session.token <= event.endSessionsUpTo) await this.detach([session]);
  }

  /**
   * Pushes available messages to the connection's holder here. Messages inserted already claimed for this very
   * session are sent as they are; others are claimed first (pending → sending only if still pending, so a concurrent
   * take or a second notification cannot also get them). A holder whose socket is not draining gets nothing more:
   * its messages stay (or become again) pending for a later take instead of piling up in memory here.
   */
  private async deliver(event: MessagesAvailableEvent): Promise<void> {
    const session = this.sessions.get(event.ref);
    // While suspended (fencing) nothing is sent: what was claimed for the session goes back to pending below.
    const writable = !this.suspended && session !== undefined && this.sessions.writable(session);
    const preclaimed = event.messages.filter(
      (message) => message.claimedFor !== undefined && writable && message.claimedFor === session.token,
    );
    const stale = event.messages.filter((message) => message.claimedFor !== undefined && !preclaimed.includes(message));
    const unclaimed = event.messages.filter((message) => message.claimedFor === undefined);
    // Claimed for a session that ended or was replaced since, or whose holder is congested: pending again.
    if (stale.length > 0)
      await this.releaseQuietly(
        event.ref,
        stale.map((message) => message.id),
      );
    if (!writable) return;
    let claimed: StoredMessage[] = [];
    if (unclaimed.length > 0) {
      try {
        claimed = await this.claims.submit({ ref: event.ref, messages: unclaimed, token: session.token });
      } catch (error) {
        this.logger.warn(`Live delivery to connection ${refLabel(event.ref)} deferred to the next take: ${(error as Error).message}`);
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
    // The notification names the connectionId only: the socket's tenant is implicit.
    for (const { frame, messageCount } of buildNotificationFrames(event.ref.connectionId, messages, this.config.maxFrameBytes)) {
      // Checked at each send, not once: many deliveries to one holder can be in flight at the same time.
      if (this.suspended || this.sessions.get(event.ref) !== session || !this.sessions.writable(session)) break;
      try {
        await session.holder.send(frame);
      } catch {
        break; // the socket failed; what was not sent is released below
      }
      sent += messageCount;
      if (event.committedAt !== undefined) {
        const seconds = (Date.now() - event.committedAt) / 1000;
        for (let i = 0; i < messageCount; i++) this.metrics.liveDeliveryDuration.observe(seconds);
      }
    }
    this.metrics.messagesNotified.inc({ tenant: event.ref.tenant }, sent);
    if (sent < messages.length)
      await this.releaseQuietly(
        event.ref,
        messages.slice(sent).map((message) => message.id),
      );
  }

  /** Claims arriving together (many connections notified at once) share one statement, like adds. */
  private async flushClaims(items: ClaimItem[]): Promise<StoredMessage[][]> {
    const rows = await this.messages.claim(
      items.flatMap(({ ref, messages, token }) =>
        messages.map((message) => ({ ref, id: message.id, wantPayload: message.payload === undefined, token })),
      ),
      this.config.redeliveryTimeoutMs,
    );
    const byKey = new Map(rows.map((row) => [`${refKey(row.ref)}\u0000${row.id}`, row]));
    return items.map(({ ref, messages }) =>
      messages.flatMap((message) => {
        const key = `${refKey(ref)}\u0000${message.id}`;
        const row = byKey.get(key);
        byKey.delete(key); // a message announced twice is claimed once, for the first
        return row ? [row] : [];
      }),
    );
  }

  /** Claimed messages that could not be sent go back to pending at once; a failure only delays them to the redelivery timeout. */
  private async releaseQuietly(ref: ConnectionRef, ids: string[]): Promise<void> {
    try {
      this.metrics.messagesRedelivered.inc({ reason: 'undeliverable' }, await this.messages.release(ref, ids));
    } catch (error) {
      this.logger.warn(
        `Releasing ${ids.length} messages of ${refLabel(ref)} failed (they return at the redelivery timeout): ${(error as Error).message}`,
      );
    }
  }
}
