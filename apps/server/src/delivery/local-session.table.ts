import { ConnectionRef, refKey } from '../config';
import { MetricsService } from '../metrics';
import { SessionHolder } from './session-holder';

/** A live session held by one of this instance's sockets. */
export interface LiveSession {
  ref: ConnectionRef;
  sessionId: string;
  holder: SessionHolder;
  /** From the registry, greater for every later session fleet-wide: claims carry it, releases compare it. */
  token: number;
}

/**
 * The live sessions this instance's sockets hold: one per connection (by refKey), indexed by holder too, so that a closing
 * socket finds every session it held without a scan.
 */
export class LocalSessionTable {
  private readonly sessions = new Map<string, LiveSession>();
  private readonly byHolder = new Map<SessionHolder, Set<string>>();

  constructor(
    private readonly metrics: MetricsService,
    /** Above this many unsent bytes a holder gets nothing more: its messages stay pending. */
    private readonly maxSocketBufferBytes: number,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  get(ref: ConnectionRef): LiveSession | undefined {
    return this.sessions.get(refKey(ref));
  }

  /** Records `session` as its connection's, replacing (and returning) the one held before, if any. */
  put(session: LiveSession): LiveSession | undefined {
    const key = refKey(session.ref);
    const replaced = this.sessions.get(key);
    if (replaced) this.forget(replaced);
    this.sessions.set(key, session);
    let held = this.byHolder.get(session.holder);
    if (!held) this.byHolder.set(session.holder, (held = new Set()));
    held.add(key);
    this.metrics.liveSessions.set(this.sessions.size);
    return replaced;
  }

  /** Removes the session if it is still its connection's; true if it was. */
  drop(session: LiveSession): boolean {
    const key = refKey(session.ref);
    if (this.sessions.get(key) !== session) return false;
    this.sessions.delete(key);
    this.forget(session);
    this.metrics.liveSessions.set(this.sessions.size);
    return true;
  }

  /** Every session held here now. */
  all(): LiveSession[] {
    return [...this.sessions.values()];
  }

  /** The sessions `holder` holds now. */
  heldBy(holder: SessionHolder): LiveSession[] {
    const held = [...(this.byHolder.get(holder) ?? [])].map((key) => this.sessions.get(key));
    return held.filter((session): session is LiveSession => session?.holder === holder);
  }

  /** Open and not over its send-buffer bound. */
  writable(session: LiveSession): boolean {
    return session.holder.isOpen && session.holder.bufferedAmount <= this.maxSocketBufferBytes;
  }

  /** Removes the session from its holder's index, and the holder itself once it holds nothing. */
  private forget(session: LiveSession): void {
    const held = this.byHolder.get(session.holder);
    held?.delete(refKey(session.ref));
    if (held?.size === 0) this.byHolder.delete(session.holder);
  }
}
