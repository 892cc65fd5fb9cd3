import { PushNotificationToken } from '@didcomm-mpr/protocol';
import { BeforeApplicationShutdown, Logger, OnModuleDestroy } from '@nestjs/common';
import { AppConfig, ConnectionRef, refKey, refLabel } from '../config';
import { MessageRepository, PushTokenRepository, StorageException } from '../database';
import { MetricsService } from '../metrics';
import { SessionRegistryPort } from '../session-registry';
import { KnownPushToken, tokenHash, tokenLabel } from './known-push-token.types';
import { PushDeliveryError } from './push-delivery.error';
import { OfferOutcome, PushJob, PushJobQueue } from './push-job.queue';
import { PushDelivery, PushTransport } from './push-transport.port';
import { FoldedDecision, PushWindowStore } from './push-window.store';
import { PushPort, PushRequest } from './push.port';
import { retryDelayMs } from './retry-backoff.policy';

/** Pushes in flight at once (each may hold a provider connection, and a database connection for a moment). */
const MAX_CONCURRENT_PUSHES = 32;
/** Push jobs waiting beyond that; then only a newer decision for a device already waiting replaces the older one. */
const MAX_QUEUED_PUSHES = 10_000;
/**
 * The trailing check runs this long after the window's end, so that the window key has surely expired (Redis
 * expires keys on its own clock, reached over a network, on a machine that may be busy): a trailing push that still
 * met the window would be folded into it, and nobody would check that fold again.
 */
const TRAILING_MARGIN_MS = 250;
/** Of SHUTDOWN_TIMEOUT_MS, the part kept for attempts to wind down after the abort (at most this, at most a fifth). */
const ABORT_GRACE_MS = 1000;
/** Tokens this instance stored recently: an add carrying the same token again needs no statement. */
const REMEMBERED_MAX = 10_000;
const REMEMBERED_TTL_MS = 30_000;

interface Remembered {
  key: string;
  dead: boolean;
  at: number;
}

/**
 * Wakes devices of connections that no live session holds anywhere in the fleet. Per decision: the token is
 * remembered (or the remembered one used), dead tokens are refused, the device's coalescing window is opened
 * fleet-wide (or the decision is folded into an open one), and each transport that can reach the device sends on
 * its own, retrying transient failures with backoff (waiting on a timer, not in a job slot). When a window ends,
 * each connection folded into it is checked, and one trailing push follows if any still has messages pending and
 * no session. Nothing here ever reaches the caller: `notify` returns at once and every failure is counted and
 * logged with the connection and message ids (the token only as a hash prefix).
 */
export class PushService extends PushPort implements OnModuleDestroy, BeforeApplicationShutdown {
  private readonly logger = new Logger(PushService.name);
  private readonly jobs = new PushJobQueue(MAX_CONCURRENT_PUSHES, MAX_QUEUED_PUSHES, (error) =>
    this.logger.error(`Push job failed unexpectedly: ${(error as Error).stack ?? String(error)}`),
  );
  /** Trailing checks this instance owes, per window key (it opened those windows). */
  private readonly trailing = new Map<string, NodeJS.Timeout>();
  /** refKey of a connection → the token this instance last stored for it (a hash), and whether it was dead. */
  private readonly remembered = new Map<string, Remembered>();
  /**
   * refKey of a connection → a token handed to `rememberToken` whose write has not finished. A session that ends right after
   * a live add releases its message before that write may have committed; the decision made then would find no
   * token in the database and wake nobody, so it uses this one.
   */
  private readonly tokensBeingRemembered = new Map<string, PushNotificationToken>();
  private readonly shutdown = new AbortController();
  /** Our own sessions are ending (module destroy): their released messages need no wake-up. */
  private releasingOwn = false;
  /** The push drain started: no new decision of any kind. */
  private draining = false;
  private overloaded = false;
  private windowsFailing = false;
  private sessionsFailing = false;

  constructor(
    private readonly config: AppConfig,
    /** At least one: without a transport the module binds the no-op adapter instead. */
    private readonly transports: PushTransport[],
    private readonly tokens: PushTokenRepository,
    private readonly windows: PushWindowStore,
    private readonly metrics: MetricsService,
    /** Whether a live session holds a connection anywhere in the fleet. */
    private readonly sessions: SessionRegistryPort,
    /** Whether a connection still has messages waiting (the trailing check). */
    private readonly messages: MessageRepository,
  ) {
    super();
  }

  notify(request: PushRequest): void {
    if (this.draining) return;
    // At our own shutdown the sessions end because this instance goes away, not the device: the mediator
    // re-registers them on another instance, so their released messages need no wake-up.
    if (this.releasingOwn && request.reason === 'released') return;
    this.offer(() => this.decide(request), windowKey(request.ref, normalize(request.token)), request.ref, request.messageId);
  }

  rememberToken(ref: ConnectionRef, token: PushNotificationToken): void {
    if (this.draining) return;
    const key = refKey(ref);
    this.tokensBeingRemembered.set(key, token);
    const written = () => {
      if (this.tokensBeingRemembered.get(key) === token) this.tokensBeingRemembered.delete(key);
    };
    const outcome = this.offer(
      async () => {
        try {
          await this.resolveToken(ref, token);
        } catch (error) {
          this.countFailure('none', failureReason(error), ref, '(token only)', undefined, error);
        } finally {
          written();
        }
      },
      undefined,
      ref,
      '(token only)',
    );
    if (outcome === 'refused') written();
  }

  /** The lookup of the connection's token takes a database connection: it goes through the bounded job queue. */
  sessionStarted(ref: ConnectionRef): void {
    if (this.config.push.coalesceWindowMs === 0 || this.draining) return;
    this.offer(
      () =>
        this.resetWindows(ref).then(undefined, (error: unknown) => {
          // The window then ends on its own; a push in it is coalesced away at worst, and the session is live.
          this.countFailure('none', failureReason(error), ref, '(session started)', undefined, error);
        }),
      `session\u0000${refKey(ref)}`,
      ref,
      '(session started)',
    );
  }

  onModuleDestroy(): void {
    this.releasingOwn = true;
  }

  /**
   * Runs after the gateway drained its requests and ended its sessions (global modules go last), before the
   * database and Redis close. From here no decision is taken; trailing checks are dropped; pushes in flight and
   * retries due get SHUTDOWN_TIMEOUT_MS in all, the last part of it after the abort, for attempts to wind down.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.draining = true;
    this.releasingOwn = true;
    const started = Date.now();
    const budget = this.config.shutdownTimeoutMs;
    for (const timer of this.trailing.values()) clearTimeout(timer);
    this.trailing.clear();
    if (!(await this.jobs.drain(budget - Math.min(ABORT_GRACE_MS, Math.floor(budget / 5))))) {
      this.logger.warn(`Shutdown: abandoning ${this.jobs.size} pushes still in flight or waiting after ${Date.now() - started} ms`);
    }
    this.jobs.cancelDelayed();
    this.shutdown.abort();
    await this.jobs.drain(budget - (Date.now() - started));
    const closed = await Promise.allSettled(this.transports.map((transport) => transport.close()));
    for (const result of closed) {
      if (result.status === 'rejected') this.logger.warn(`Shutdown: closing a push transport failed: ${(result.reason as Error).message}`);
    }
  }

  /** Offers a job; a job that did not get in, or was pushed out by a newer one of its key, is counted as dropped. */
  private offer(job: PushJob, key: string | undefined, ref: ConnectionRef | undefined, messageId: string): OfferOutcome {
    const outcome = this.jobs.offer(job, key);
    const dropped = outcome === 'refused' || outcome === 'replaced';
    if (dropped) {
      this.metrics.pushFailed.inc({ transport: 'none', reason: 'overloaded' });
      if (!this.overloaded) {
        this.logger.warn(
          `Push backlog full (${MAX_QUEUED_PUSHES}): dropping push work (keeping the latest per device), first for connection ${ref ? refLabel(ref) : '(trailing)'} message ${messageId}`,
        );
      }
    }
    this.overloaded = dropped;
    return outcome;
  }

  /** One push decision: never rejects; a failure is counted and logged here. */
  private async decide(request: PushRequest): Promise<void> {
    try {
      const token = await this.resolveToken(request.ref, request.token ?? this.tokensBeingRemembered.get(refKey(request.ref)));
      await this.pushOnce({ ref: request.ref, messageId: request.messageId, token });
    } catch (error) {
      this.countFailure('none', failureReason(error), request.ref, request.messageId, undefined, error);
    }
  }

  /**
   * The token to use: the one that came with the message (stored as the connection's latest, unless dead), or the
   * remembered one. A dead token counts as none: re-sending it does not revive it, and the connection's remembered
   * live token (if another one is) is used instead.
   */
  private async resolveToken(ref: ConnectionRef, given: PushNotificationToken | undefined): Promise<KnownPushToken | undefined> {
    const token = normalize(given);
    if (!token) return this.tokens.latest(ref);
    const hash = tokenHash(token.token);
    const key = `${token.type}\u0000${token.appId ?? ''}\u0000${hash}`;
    const connection = refKey(ref);
    const cached = this.remembered.get(connection);
    if (cached && cached.key === key && Date.now() - cached.at < REMEMBERED_TTL_MS) return cached.dead ? this.tokens.latest(ref) : token;
    let dead: boolean;
    try {
      ({ dead } = await this.tokens.remember(ref, token, hash));
    } catch (error) {
      // Only the memory of the token is lost: the token in hand still wakes the device now.
      this.countFailure('none', failureReason(error), ref, '(remembering the token)', token, error);
      return token;
    }
    this.remembered.delete(connection);
    if (this.remembered.size >= REMEMBERED_MAX) this.remembered.delete(this.remembered.keys().next().value as string);
    this.remembered.set(connection, { key, dead, at: Date.now() });
    return dead ? this.tokens.latest(ref) : token;
  }

  /** Coalesces, checks for a session, and starts every transport that can reach the device, each on its own. */
  private async pushOnce(delivery: PushDelivery): Promise<void> {
    const transports = this.transports.filter((transport) => transport.accepts(delivery.token));
    if (transports.length === 0) return; // no token of a configured type and no webhook: nothing can wake it
    const windowMs = this.config.push.coalesceWindowMs;
    const key = windowKey(delivery.ref, delivery.token);
    if (windowMs > 0 && !(await this.openOrFold(key, windowMs, delivery))) {
      this.metrics.pushCoalesced.inc();
      return;
    }
    if (await this.heldSomewhere(delivery.ref)) {
      // Awake already: no push, and no window that would hold back the next one.
      if (windowMs > 0) await this.clearWindow(key, delivery.ref);
      return;
    }
    if (windowMs > 0) this.scheduleTrailing(key, windowMs);
    // Settled, not all: one transport's failure (a dead-token mark that cannot be stored) must not end the job while
    // another is still sending.
    const results = await Promise.allSettled(transports.map((transport) => this.attempt(transport, delivery, 1)));
    for (const result of results) {
      if (result.status === 'rejected')
        this.countFailure('none', failureReason(result.reason), delivery.ref, delivery.messageId, delivery.token, result.reason);
    }
  }

  /**
   * One attempt through one transport. A transient failure schedules the next attempt on a timer, outside the job
   * slots (exponential backoff, full jitter, `Retry-After` floor, all capped): a slow provider cannot hold the slots
   * other devices' pushes need, and one transport's retries do not hold back another's.
   */
  private async attempt(transport: PushTransport, delivery: PushDelivery, attempt: number): Promise<void> {
    const { maxAttempts, retryBaseMs } = this.config.push;
    let failure: PushDeliveryError;
    try {
      await transport.send(delivery, this.shutdown.signal);
      this.metrics.pushSent.inc({ transport: transport.name });
      this.logger.debug(
        `Push sent via ${transport.name} for connection ${refLabel(delivery.ref)} message ${delivery.messageId} (token ${tokenLabel(delivery.token)})`,
      );
      return;
    } catch (error) {
      failure = error instanceof PushDeliveryError ? error : new PushDeliveryError('transient', 'error', (error as Error).message);
    }
    if (failure.kind === 'dead-token' && delivery.token) {
      await this.forgetDeadToken(transport, delivery, failure);
      return;
    }
    if (failure.kind === 'misconfigured') {
      this.metrics.pushFailed.inc({ transport: transport.name, reason: failure.reason });
      this.logger.error(
        `Push refused for our configuration, not the token (${transport.name}: ${failure.message}): check the ${transport.name} settings; connection ${refLabel(delivery.ref)} message ${delivery.messageId}, token ${tokenLabel(delivery.token)}`,
      );
      return;
    }
    if (failure.kind !== 'transient' || attempt >= maxAttempts || this.shutdown.signal.aborted) {
      this.countFailure(transport.name, failure.reason, delivery.ref, delivery.messageId, delivery.token, failure, attempt);
      return;
    }
    this.metrics.pushRetried.inc({ transport: transport.name });
    this.jobs.later(
      () => this.attempt(transport, delivery, attempt + 1),
      retryDelayMs(attempt, retryBaseMs, failure.retryAfterMs),
      (why) => this.countFailure(transport.name, why, delivery.ref, delivery.messageId, delivery.token, failure, attempt),
    );
  }

  private async forgetDeadToken(transport: PushTransport, delivery: PushDelivery, failure: PushDeliveryError): Promise<void> {
    const token = delivery.token!;
    this.metrics.pushFailed.inc({ transport: transport.name, reason: 'dead-token' });
    this.logger.warn(
      `Push token ${tokenLabel(token)} of connection ${refLabel(delivery.ref)} is dead (${transport.name}: ${failure.reason}); forgetting it (message ${delivery.messageId})`,
    );
    const hash = tokenHash(token.token);
    for (const [connection, entry] of this.remembered)
      if (entry.key.endsWith(hash)) this.remembered.set(connection, { ...entry, dead: true });
    try {
      await this.tokens.markDead(hash);
    } catch (error) {
      // The provider keeps refusing it, so the next push finds it dead again and retries the mark.
      this.countFailure(transport.name, failureReason(error), delivery.ref, delivery.messageId, token, error);
    }
  }

  private scheduleTrailing(key: string, windowMs: number): void {
    clearTimeout(this.trailing.get(key));
    const timer = setTimeout(() => {
      this.trailing.delete(key);
      if (this.draining) return;
      this.offer(() => this.trailingCheck(key), `trailing\u0000${key}`, undefined, '(trailing)');
    }, windowMs + TRAILING_MARGIN_MS);
    timer.unref();
    this.trailing.set(key, timer);
  }

  /**
   * The window ended. Every connection folded into it (on any instance) is checked: one that still has messages
   * pending and no session anywhere gets one more push, for the device, and the others none: a message that arrived
   * after the device fetched must not wait unannounced, and one device needs one wake-up.
   */
  private async trailingCheck(key: string): Promise<void> {
    let folded: FoldedDecision[];
    try {
      folded = await this.windows.takeFolded(key);
    } catch (error) {
      this.countFailure('none', 'coalescing', undefined, '(trailing)', undefined, error);
      return;
    }
    for (const { ref, messageId } of folded) {
      try {
        if (await this.heldSomewhere(ref)) continue;
        if ((await this.messages.countPending(ref)) === 0) continue;
        const token = await this.tokens.latest(ref);
        this.logger.debug(`Trailing push for connection ${refLabel(ref)} message ${messageId}`);
        await this.pushOnce({ ref, messageId, token });
        return;
      } catch (error) {
        this.countFailure('none', failureReason(error), ref, messageId, undefined, error);
      }
    }
  }

  private async resetWindows(ref: ConnectionRef): Promise<void> {
    const token = await this.tokens.latest(ref);
    const keys = [windowKey(ref, undefined), ...(token ? [windowKey(ref, token)] : [])];
    // Trailing timers stay: they find this connection's fold gone, and still check other connections of the device.
    await Promise.all(keys.map((key) => this.windows.clear(key, ref)));
  }

  /** A window store failure (Redis away) means pushing without coalescing: a duplicate beats a missed wake-up. */
  private async openOrFold(key: string, windowMs: number, delivery: PushDelivery): Promise<boolean> {
    try {
      const opened = await this.windows.openOrFold(key, windowMs, { ref: delivery.ref, messageId: delivery.messageId });
      if (this.windowsFailing) this.logger.log('Push coalescing works again');
      this.windowsFailing = false;
      return opened;
    } catch (error) {
      this.metrics.pushFallbacks.inc({ kind: 'uncoalesced' });
      if (!this.windowsFailing) this.logger.warn(`Push coalescing unavailable, pushing without it: ${(error as Error).message}`);
      this.windowsFailing = true;
      return true;
    }
  }

  private async clearWindow(key: string, ref: ConnectionRef): Promise<void> {
    try {
      await this.windows.clear(key, ref);
    } catch (error) {
      // The window then ends on its own: the next push for this device waits for it at worst; counted and logged.
      this.countFailure('none', 'coalescing', ref, '(window)', undefined, error);
    }
  }

  /**
   * Whether a live session holds the connection anywhere. When the registry cannot answer, the answer is "no": a
   * push to an awake device costs little, a missed one leaves messages waiting.
   */
  private async heldSomewhere(ref: ConnectionRef): Promise<boolean> {
    try {
      const held = (await this.sessions.get(ref)) !== undefined;
      this.sessionsFailing = false;
      return held;
    } catch (error) {
      this.metrics.pushFallbacks.inc({ kind: 'session-unknown' });
      if (!this.sessionsFailing)
        this.logger.warn(`Session registry unavailable, pushing without checking for live sessions: ${(error as Error).message}`);
      this.sessionsFailing = true;
      return false;
    }
  }

  private countFailure(
    transport: string,
    reason: string,
    /** Undefined for the trailing check of a window whose connections could not be read. */
    ref: ConnectionRef | undefined,
    messageId: string,
    token: KnownPushToken | undefined,
    error: unknown,
    attempts?: number,
  ): void {
    this.metrics.pushFailed.inc({ transport, reason });
    this.logger.warn(
      `Push failed (${transport}, ${reason}${attempts ? `, after ${attempts} attempts` : ''}) for connection ${ref ? refLabel(ref) : '(trailing)'} message ${messageId}, token ${tokenLabel(token)}: ${(error as Error)?.message ?? String(error)}`,
    );
  }
}

function failureReason(error: unknown): string {
  return error instanceof StorageException ? 'storage' : 'error';
}

/** A token the server can use, or undefined: no token string, or no type (unknown types are kept for a webhook). */
function normalize(given: PushNotificationToken | undefined): KnownPushToken | undefined {
  if (!given || typeof given.token !== 'string' || given.token.trim() === '' || typeof given.type !== 'string' || given.type.trim() === '')
    return undefined;
  return {
    type: given.type.trim().toLowerCase(),
    token: given.token.trim(),
    ...(typeof given.appId === 'string' && given.appId !== '' ? { appId: given.appId } : {}),
  };
}

/**
 * Per device when its token is known, per connection otherwise; within the tenant either way, so that one tenant's
 * pushes never hold back (or fold into the trailing check of) another tenant's, even for the same device.
 */
function windowKey(ref: ConnectionRef, token: KnownPushToken | undefined): string {
  return token ? `device\u0000${ref.tenant}\u0000${tokenHash(token.token)}` : `connection\u0000${refKey(ref)}`;
}
