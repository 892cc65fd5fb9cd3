import type { Command } from 'ioredis';
import { RedisClient } from './redis-client.factory';

/** What the guard reports, per connection role; the Redis module turns it into metrics. */
export interface RedisCommandObserver {
  inFlight(count: number): void;
  timedOut(command: string): void;
  refused(command: string): void;
}

/** A command unanswered within the deadline. Its message names the command, never its arguments (keys, payloads). */
export class RedisCommandTimeoutError extends Error {
  constructor(command: string, timeoutMs: number) {
    super(`Redis did not answer ${command.toUpperCase()} within ${timeoutMs} ms`);
    this.name = 'RedisCommandTimeoutError';
  }
}

/** Refused without being sent: too many commands of this connection are waiting for Redis already. */
export class RedisOverloadedError extends Error {
  constructor(command: string, limit: number) {
    super(`Redis command ${command.toUpperCase()} refused: ${limit} commands are already waiting for an answer`);
    this.name = 'RedisOverloadedError';
  }
}

type SendCommand = (command: Command, ...rest: unknown[]) => unknown;

/**
 * The deadline and the in-flight bound of one client's commands, applied once, where ioredis funnels every command
 * (`sendCommand`: plain commands, Lua scripts defined with `defineCommand`, (S)SUBSCRIBE, the connection handshake).
 *
 * Why not ioredis' own `commandTimeout`: it is armed when a node connection sends the command, so a command waiting in
 * a cluster's offline queue (cluster down, slots being refreshed) or between MOVED/ASK redirections waits without any
 * deadline. Here the timer starts when the caller issues the command, whatever happens to it afterwards; the
 * rejection goes through `command.reject`, so a cluster treats it like any other error (no retry).
 *
 * A stalled network answers nothing and resets nothing: commands would wait for as long as the silence lasts, and
 * every caller (session calls, lease renewals, publishes) would pile up behind them. At most `maxInFlight` commands
 * wait for an answer at once; beyond that a command is refused at once. (A timed-out command may stay in ioredis'
 * queue of written commands until its late reply or the connection's end; the connections' `socketTimeout` ends a
 * connection that stays silent while commands wait, which releases them.)
 */
export class RedisCommandGuard {
  private inFlight = 0;
  /** Commands already counted: a cluster sends a command again on MOVED/ASK or after a node's reconnect. */
  private readonly tracked = new WeakSet<Command>();
  /** Last time a command timed out, and last time Redis answered one (a reply or a Redis error reply). */
  private lastTimeoutAt = 0;
  private lastAnswerAt = 0;

  constructor(
    private readonly timeoutMs: number,
    private readonly maxInFlight: number,
    private readonly observer: RedisCommandObserver,
  ) {}

  /** Whether the last command that ended timed out (and nothing answered since): the network is silent. */
  get stalled(): boolean {
    return this.lastTimeoutAt > this.lastAnswerAt;
  }

  get waiting(): number {
    return this.inFlight;
  }

  /** Puts the guard in front of `client`'s command funnel. */
  install(client: RedisClient): void {
    const target = client as unknown as { sendCommand: SendCommand };
    const send = target.sendCommand.bind(client) as SendCommand;
    target.sendCommand = (command: Command, ...rest: unknown[]) => {
      if (this.tracked.has(command)) return send(command, ...rest);
      if (this.inFlight >= this.maxInFlight) {
        this.observer.refused(command.name);
        command.reject(new RedisOverloadedError(command.name, this.maxInFlight));
        return command.promise;
      }
      this.tracked.add(command);
      this.inFlight++;
      this.observer.inFlight(this.inFlight);
      const timer = setTimeout(() => command.reject(new RedisCommandTimeoutError(command.name, this.timeoutMs)), this.timeoutMs);
      command.promise.then(
        () => this.settled(timer, true),
        (error: unknown) => this.settled(timer, isAnswer(error), error instanceof RedisCommandTimeoutError ? command.name : undefined),
      );
      return send(command, ...rest);
    };
  }

  private settled(timer: NodeJS.Timeout, answered: boolean, timedOut?: string): void {
    clearTimeout(timer);
    this.inFlight--;
    this.observer.inFlight(this.inFlight);
    const now = Date.now();
    if (answered) this.lastAnswerAt = now;
    if (timedOut !== undefined) {
      this.lastTimeoutAt = now;
      this.observer.timedOut(timedOut);
    }
  }
}

/** A Redis error reply (WRONGTYPE, NOSCRIPT, MOVED, ...) is an answer: the server is there. */
function isAnswer(error: unknown): boolean {
  return (error as Error | undefined)?.name === 'ReplyError';
}
