import { randomBytes, randomUUID } from 'node:crypto';
import {
  JsonRpcWsClient,
  JsonRpcWsClientOptions,
  MessagesReceivedParams,
  NotifiedMessage,
  RpcCallError,
  RpcNotification,
  RpcTransportError,
} from '@didcomm-mpr/test-kit';
import { DeliveryLedger } from './delivery-ledger';
import { FAULTS_REDELIVERY_TIMEOUT_MS } from './faults-profile';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const RETRY_DELAY_MS = 100;
const MAX_RETRY_DELAY_MS = 1_000;
/** Exponential backoff from 100 ms to 1 s, as a well-behaved mediator retries (and to keep error counts readable). */
const backoff = (attempt: number) => sleep(Math.min(MAX_RETRY_DELAY_MS, RETRY_DELAY_MS * 2 ** attempt));
/** An add is given up (and counted as refused) after retrying this long: far beyond any fault we inject. */
const ADD_GIVE_UP_MS = 90_000;
const TICK_MS = 10;
const TAKE_LIMIT = 100;
/**
 * The generator's sockets record nothing (their notifications go to the ledger as they come) and give up
 * connecting quickly: a client of a killed instance moves on to the next one.
 */
const CLIENT_OPTIONS: JsonRpcWsClientOptions = { record: false, handshakeTimeoutMs: 5_000 };

/** Thrown through a client's calls once it is stopped, so that its retry loops end. */
class ClientStopped extends Error {}

/**
 * A failed call as the generator counts it: by the server's JSON-RPC code, or by the transport failure
 * ('socket-closed', 'timeout', 'connect-failed'); anything else is a bug and is thrown on.
 */
function failureOf(error: unknown): { code: string; retryable: boolean } {
  if (error instanceof RpcCallError || error instanceof RpcTransportError) return { code: String(error.code), retryable: error.retryable };
  throw error;
}

/** Errors seen by the legitimate clients, by JSON-RPC code or transport failure ('socket-closed', ...). */
export class ErrorTally {
  private readonly counts = new Map<string, number>();
  /** First and last time an error was seen (to tell errors during a fault from errors after it). */
  readonly times: number[] = [];

  add(code: string, at = Date.now()): void {
    this.counts.set(code, (this.counts.get(code) ?? 0) + 1);
    this.times.push(at);
  }

  total(): number {
    let sum = 0;
    for (const count of this.counts.values()) sum += count;
    return sum;
  }

  /** After `at`: errors seen then, by code. */
  since(at: number): number {
    return this.times.filter((t) => t >= at).length;
  }

  describe(): string {
    if (this.counts.size === 0) return '0';
    return [...this.counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([code, count]) => `${count} × ${code}`)
      .join(', ');
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}

/**
 * The instances a client may reach, as a load balancer would offer them: the test removes an instance when
 * it kills it; clients reconnect to the next one in the list.
 */
export class InstancePool {
  constructor(private urls: string[]) {}

  pick(preferred: number, attempt: number): string {
    if (this.urls.length === 0) throw new Error('no instance left in the pool');
    return this.urls[(preferred + attempt) % this.urls.length];
  }

  remove(url: string): void {
    this.urls = this.urls.filter((candidate) => candidate !== url);
  }

  get size(): number {
    return this.urls.length;
  }
}

export interface LoadGeneratorOptions {
  ledger: DeliveryLedger;
  errors: ErrorTally;
  pool: InstancePool;
  connections: string[];
  /** Sockets holding live sessions; connections are dealt to them round-robin. */
  holderSockets: number;
  senderSockets: number;
  ratePerSecond: number;
  payloadBytes: number;
  /** Errors of one holder counted apart (a holder that is itself the fault, like a paused consumer). */
  holderErrors?: (index: number) => ErrorTally | undefined;
  /** Adds in flight over all senders above which the generator stops issuing (and counts the shortfall). */
  maxInFlight?: number;
  /** Connections that no holder holds: adds go to them too, and a taker drains them (take, then remove). */
  unheldConnections?: string[];
}

/** Something that talks to the server through a socket it reopens when the socket dies. */
abstract class ReconnectingClient {
  protected client: JsonRpcWsClient | undefined;
  private connecting: Promise<JsonRpcWsClient> | undefined;
  stopped = false;

  constructor(
    readonly name: string,
    protected readonly pool: InstancePool,
    protected readonly preferred: number,
    protected readonly errors: ErrorTally,
  ) {}

  /** The open socket, reconnecting (to the next instance of the pool on failure) when needed. */
  protected socket(): Promise<JsonRpcWsClient> {
    if (this.client?.open) return Promise.resolve(this.client);
    this.connecting ??= this.reconnect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async reconnect(): Promise<JsonRpcWsClient> {
    for (let attempt = 0; ; attempt++) {
      if (this.stopped) throw new ClientStopped(`${this.name} is stopped`);
      const url = this.pool.pick(this.preferred, attempt);
      try {
        const client = await JsonRpcWsClient.connect(url, {
          ...CLIENT_OPTIONS,
          onNotification: (notification) => this.notified(client, notification),
        });
        this.client = client;
        client.onClose(() => this.onSocketClosed(client));
        await this.onConnected(client);
        return client;
      } catch (error) {
        this.errors.add(failureOf(error).code);
        await backoff(attempt);
      }
    }
  }

  /** A call retried (reconnecting as needed) until it succeeds or fails with a non-retryable error. */
  protected async callUntilDone<T>(method: string, params: unknown, giveUpAt = Number.POSITIVE_INFINITY): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const client = await this.socket();
        return await client.call<T>(method, params);
      } catch (error) {
        const failure = failureOf(error);
        this.errors.add(failure.code);
        if (!failure.retryable || Date.now() > giveUpAt) throw error;
        await backoff(attempt);
      }
    }
  }

  /** One take (retried until done) and the acknowledgement of what it returned; resolves with how many it took. */
  protected async takeAndAcknowledge(ledger: DeliveryLedger, connectionId: string): Promise<number> {
    const askedAt = Date.now();
    const batch = await this.callUntilDone<{ id: string }[]>('takeFromQueue', { connectionId, limit: TAKE_LIMIT });
    if (batch.length === 0) return 0;
    const ids = batch.map((message) => message.id);
    ledger.delivered(ids, this.name, 'take', Date.now(), askedAt);
    await this.callUntilDone('removeMessages', { connectionId, messageIds: ids });
    ledger.removed(ids);
    return ids.length;
  }

  private notified(client: JsonRpcWsClient, notification: RpcNotification): void {
    // The server sends no other notification: anything else is a bug worth a crash.
    if (notification.method !== 'messagesReceived') throw new Error(`unexpected notification from the server: ${notification.method}`);
    const { connectionId, messages } = notification.params as MessagesReceivedParams;
    this.onNotification(client, connectionId, messages);
  }

  protected onNotification(_client: JsonRpcWsClient, _connectionId: string, _messages: NotifiedMessage[]): void {
    throw new Error(`${this.name} got a notification it never asked for`);
  }

  protected async onConnected(_client: JsonRpcWsClient): Promise<void> {}

  protected onSocketClosed(_client: JsonRpcWsClient): void {}

  async close(): Promise<void> {
    this.stopped = true;
    await this.client?.closeQuietly();
  }
}

/** A mediator instance's sending side: adds with retries on the same messageId, as the README advises. */
export class Sender extends ReconnectingClient {
  inFlight = 0;

  constructor(
    name: string,
    pool: InstancePool,
    preferred: number,
    errors: ErrorTally,
    private readonly ledger: DeliveryLedger,
  ) {
    super(name, pool, preferred, errors);
  }

  async add(connectionId: string, payload: unknown): Promise<void> {
    const messageId = randomUUID();
    const giveUpAt = Date.now() + ADD_GIVE_UP_MS;
    this.inFlight++;
    // Recorded before anything can go wrong, so a refusal has a record; each real send is recorded again
    // right before it leaves, after any reconnect: a retry that re-adds an id removed meanwhile must be
    // dated when it was sent, or its second delivery would look like a server duplicate.
    this.ledger.attempt(messageId, connectionId);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const client = await this.socket();
          const sentAt = Date.now();
          this.ledger.attempt(messageId, connectionId, sentAt);
          try {
            await client.call('addMessage', { connectionId, recipientDids: ['did:example:faults'], payload, messageId });
          } finally {
            this.ledger.attemptSettled(messageId, sentAt);
          }
          this.ledger.acknowledged(messageId);
          return;
        } catch (error) {
          if (error instanceof ClientStopped) {
            this.ledger.refused(messageId, 'stopped');
            return;
          }
          const failure = failureOf(error);
          this.errors.add(failure.code);
          if (!failure.retryable || Date.now() > giveUpAt) {
            this.ledger.refused(messageId, failure.code);
            return;
          }
          await backoff(attempt);
        }
      }
    } finally {
      this.inFlight--;
    }
  }

  /** Opens the socket now, so the first adds do not measure connection set-up. */
  async connect(): Promise<void> {
    await this.socket();
  }
}

/**
 * A mediator instance's receiving side: holds live sessions for its connections, acknowledges every
 * notification with removeMessages, and when its socket dies reconnects, re-registers its sessions with
 * `reclaim` and the same sessionIds, then takes the backlog (which is not pushed), as a mediator would.
 */
export class Holder extends ReconnectingClient {
  private readonly acks = new Set<Promise<void>>();
  /** When the sessions were last (re-)registered after a socket loss. */
  reRegisteredAt: number | undefined;
  socketLosses = 0;
  private drains = new Set<Promise<void>>();
  private readonly ackOnNotification: boolean;

  constructor(
    name: string,
    pool: InstancePool,
    preferred: number,
    errors: ErrorTally,
    private readonly ledger: DeliveryLedger,
    readonly connections: string[],
    options: { ack?: boolean } = {},
  ) {
    super(name, pool, preferred, errors);
    this.ackOnNotification = options.ack ?? true;
  }

  sessionId(connectionId: string): string {
    return `${this.name}:${connectionId}`;
  }

  async start(): Promise<void> {
    await this.socket();
  }

  /** The socket in use (for pausing it, or reading its pid-side statistics). */
  get currentClient(): JsonRpcWsClient | undefined {
    return this.client;
  }

  protected override async onConnected(client: JsonRpcWsClient): Promise<void> {
    const reconnect = this.socketLosses > 0;
    for (const connectionId of this.connections) this.ledger.cause(connectionId);
    await Promise.all(
      this.connections.map(async (connectionId) => {
        for (let attempt = 0; ; attempt++) {
          try {
            const held = await client.call<boolean>('addLiveSession', {
              connectionId,
              sessionId: this.sessionId(connectionId),
              reclaim: reconnect,
            });
            if (held) return;
            // Refused reclaim: someone else holds it. A mediator would take it over; so do we, and count it.
            this.errors.add('reclaim-refused');
            await client.call<boolean>('addLiveSession', { connectionId, sessionId: this.sessionId(connectionId) });
            return;
          } catch (error) {
            this.errors.add(failureOf(error).code);
            if (!client.open) throw error;
            await backoff(attempt);
          }
        }
      }),
    );
    if (reconnect) {
      this.reRegisteredAt = Date.now();
      this.track(this.drains, this.drainAll());
    }
  }

  protected override onSocketClosed(_client: JsonRpcWsClient): void {
    if (this.stopped) return;
    this.socketLosses++;
    for (const connectionId of this.connections) this.ledger.cause(connectionId);
    // Reconnect at once, as a mediator whose wallets are still online would.
    void this.socket().catch((error: unknown) => {
      if (!(error instanceof ClientStopped)) throw error;
    });
  }

  protected override onNotification(_client: JsonRpcWsClient, connectionId: string, messages: NotifiedMessage[]): void {
    const ids = messages.map((message) => message.id);
    this.ledger.delivered(ids, this.name, 'live');
    if (this.ackOnNotification) this.track(this.acks, this.ack(connectionId, ids));
  }

  private track(set: Set<Promise<void>>, work: Promise<void>): void {
    const tracked = work.catch((error: unknown) => {
      if (error instanceof ClientStopped) return;
      throw error;
    });
    set.add(tracked);
    void tracked.finally(() => set.delete(tracked));
  }

  async ack(connectionId: string, ids: string[]): Promise<void> {
    await this.callUntilDone('removeMessages', { connectionId, messageIds: ids });
    this.ledger.removed(ids);
  }

  /** Takes (and acknowledges) what is pending for each connection, as after a reconnect. */
  async drainAll(): Promise<void> {
    for (const connectionId of this.connections) await this.drain(connectionId);
  }

  /** Takes and acknowledges one connection's backlog until it is empty. */
  private async drain(connectionId: string): Promise<void> {
    while ((await this.takeAndAcknowledge(this.ledger, connectionId)) > 0) {
      // until the backlog is empty
    }
  }

  /** Session churn: end the socket cleanly and come back (sessions re-registered, backlog taken). */
  async cycleSocket(): Promise<void> {
    const client = this.client;
    if (!client) return;
    await client.closeQuietly();
    // onSocketClosed has started the reconnect; wait for it.
    await this.socket();
  }

  /** Session churn without a socket change: remove one session and register it again, then take its backlog. */
  async cycleSession(connectionId: string): Promise<void> {
    const sessionId = this.sessionId(connectionId);
    await this.callUntilDone('removeLiveSession', { connectionId, sessionId });
    this.ledger.cause(connectionId);
    await this.callUntilDone('addLiveSession', { connectionId, sessionId });
    await this.drain(connectionId);
  }

  async settled(): Promise<void> {
    while (this.acks.size > 0 || this.drains.size > 0) await Promise.all([...this.acks, ...this.drains]);
  }
}

/**
 * A mediator picking up for wallets that hold no live session: takes each connection's backlog and acknowledges it
 * with removeMessages, round after round, retrying retryable failures (so a fault meets takes and acknowledgements
 * in flight, not only adds).
 */
export class Taker extends ReconnectingClient {
  private loop: Promise<void> | undefined;

  constructor(
    name: string,
    pool: InstancePool,
    preferred: number,
    errors: ErrorTally,
    private readonly ledger: DeliveryLedger,
    readonly connections: string[],
  ) {
    super(name, pool, preferred, errors);
  }

  start(): void {
    this.loop ??= this.run().catch((error: unknown) => {
      if (!(error instanceof ClientStopped)) throw error;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      for (const connectionId of this.connections) {
        if (this.stopped) return;
        await this.takeAndAcknowledge(this.ledger, connectionId);
      }
      await sleep(20);
    }
  }

  /** Stops after the current call; resolves once the loop has ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

export function makePayload(bytes: number): Record<string, string> {
  // Incompressible, like the encrypted messages a mediator stores.
  return {
    protected: 'eyJ0eXAiOiJKV00ifQ',
    iv: 'aXY',
    tag: 'dGFn',
    ciphertext: randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64'),
  };
}

/**
 * Senders adding at a steady rate to random connections, and holders acknowledging what they are notified.
 * Records everything in the ledger; `finish()` stops the adds and waits until every one is settled.
 */
export class LoadGenerator {
  readonly senders: Sender[];
  readonly holders: Holder[];
  readonly taker: Taker | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private adds = new Set<Promise<void>>();
  private issued = 0;
  private startedAt = 0;
  private nextSender = 0;
  /** Where adds go: the held connections and the unheld ones. */
  private readonly targets: string[];
  /** Adds not issued on time because too many were in flight (the server could not keep up). */
  shortfall = 0;
  ratePerSecond: number;

  constructor(private readonly options: LoadGeneratorOptions) {
    const { ledger, errors, pool } = options;
    this.ratePerSecond = options.ratePerSecond;
    this.senders = Array.from({ length: options.senderSockets }, (_, i) => new Sender(`sender-${i}`, pool, i, errors, ledger));
    this.holders = Array.from(
      { length: options.holderSockets },
      (_, i) =>
        new Holder(
          `holder-${i}`,
          pool,
          i,
          options.holderErrors?.(i) ?? errors,
          ledger,
          options.connections.filter((_, c) => c % options.holderSockets === i),
        ),
    );
    const unheld = options.unheldConnections ?? [];
    this.taker = unheld.length > 0 ? new Taker('taker', pool, 0, errors, ledger, unheld) : undefined;
    this.targets = [...options.connections, ...unheld];
  }

  async connect(): Promise<void> {
    await Promise.all([...this.holders.map((holder) => holder.start()), ...this.senders.map((sender) => sender.connect())]);
    this.taker?.start();
  }

  start(): void {
    this.startedAt = Date.now();
    this.issued = 0;
    const maxInFlight = this.options.maxInFlight ?? Math.max(200, this.options.ratePerSecond * 5);
    const payload = makePayload(this.options.payloadBytes);
    this.ticker = setInterval(() => {
      const due = Math.floor(((Date.now() - this.startedAt) * this.ratePerSecond) / 1000);
      while (this.issued < due) {
        this.issued++;
        if (this.adds.size >= maxInFlight) {
          this.shortfall++;
          continue;
        }
        const sender = this.senders[this.nextSender++ % this.senders.length];
        const connectionId = this.targets[Math.floor(Math.random() * this.targets.length)];
        // One payload object for all adds: the generator must not be the CPU hog on these two cores.
        const add = sender.add(connectionId, payload);
        this.adds.add(add);
        void add.finally(() => this.adds.delete(add));
      }
    }, TICK_MS);
  }

  /** Stops issuing adds and waits until every add and every acknowledgement has settled. */
  async finish(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = undefined;
    while (this.adds.size > 0) await Promise.all([...this.adds]);
    await this.taker?.stop();
    await Promise.all(this.holders.map((holder) => holder.settled()));
  }

  async close(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    await Promise.all([...this.senders, ...this.holders, ...(this.taker ? [this.taker] : [])].map((client) => client.close()));
  }
}

/** `count` connection ids of a new run: `<prefix>-<run>-<i>`, so that runs never share a queue. */
export function runConnections(prefix: string, count: number): string[] {
  const run = randomBytes(3).toString('hex');
  return Array.from({ length: count }, (_, i) => `${prefix}-${run}-${i}`);
}

/**
 * The load every fault runs: `connections` held live by `sockets` holders and fed by as many senders at `ratePerSecond`
 * with 1 KiB payloads, spread over the instances of `wsUrls`; `unheldConnections` are drained by a taker. Not
 * connected: the caller keeps the generator (to close it whatever happens) before connecting it.
 */
export function faultLoad(options: {
  wsUrls: string[];
  connections: string[];
  unheldConnections?: string[];
  sockets: number;
  ratePerSecond: number;
}): { load: LoadGenerator; ledger: DeliveryLedger; errors: ErrorTally; pool: InstancePool } {
  const ledger = new DeliveryLedger(FAULTS_REDELIVERY_TIMEOUT_MS);
  const errors = new ErrorTally();
  const pool = new InstancePool(options.wsUrls);
  const load = new LoadGenerator({
    ledger,
    errors,
    pool,
    connections: options.connections,
    unheldConnections: options.unheldConnections,
    holderSockets: options.sockets,
    senderSockets: options.sockets,
    ratePerSecond: options.ratePerSecond,
    payloadBytes: 1024,
  });
  return { load, ledger, errors, pool };
}

/**
 * The load of the single-instance faults that also meet takes: `connections` held live by two holders,
 * `unheldConnections` drained by a taker, two senders at `ratePerSecond` with 1 KiB payloads; connected, not started.
 */
export async function singleInstanceLoad(
  wsUrl: string,
  prefix: string,
  sizes: { connections: number; unheld: number; ratePerSecond: number },
): Promise<{
  load: LoadGenerator;
  ledger: DeliveryLedger;
  errors: ErrorTally;
  pool: InstancePool;
  connections: string[];
  unheld: string[];
}> {
  const connections = runConnections(prefix, sizes.connections);
  const unheld = runConnections(`${prefix}-unheld`, sizes.unheld);
  const set = faultLoad({ wsUrls: [wsUrl], connections, unheldConnections: unheld, sockets: 2, ratePerSecond: sizes.ratePerSecond });
  await set.load.connect();
  return { ...set, connections, unheld };
}

export interface AuditOptions {
  ledger: DeliveryLedger;
  pool: InstancePool;
  connections: string[];
  holders: Holder[];
  /** How long to keep looking for messages still 'sending' to a holder that is gone (the redelivery timeout). */
  patienceMs: number;
}

/**
 * The final check: once the holders are quiet, take whatever is still pending for every connection (it was
 * acknowledged and is takeable: not lost), and look again until every acknowledged id is accounted for or
 * `patienceMs` has passed (messages in flight to a vanished holder come back at the redelivery timeout).
 */
export async function auditDelivery(options: AuditOptions): Promise<void> {
  const { ledger } = options;
  // Quiet: no delivery for a second and every acknowledgement answered.
  const quietDeadline = Date.now() + 15_000;
  while (Date.now() - ledger.lastDeliveryAt < 1_000 && Date.now() < quietDeadline) await sleep(100);
  await Promise.all(options.holders.map((holder) => holder.settled()));

  const auditor = await JsonRpcWsClient.connect(options.pool.pick(0, 0), CLIENT_OPTIONS);
  try {
    const deadline = Date.now() + options.patienceMs;
    for (;;) {
      for (const connectionId of options.connections) {
        for (;;) {
          const askedAt = Date.now();
          const batch = await auditor.call<{ id: string }[]>('takeFromQueue', { connectionId, limit: TAKE_LIMIT });
          if (batch.length === 0) break;
          const ids = batch.map((message) => message.id);
          ledger.delivered(ids, 'auditor', 'final-take', Date.now(), askedAt);
          await auditor.call('removeMessages', { connectionId, messageIds: ids });
          ledger.removed(ids);
        }
      }
      await Promise.all(options.holders.map((holder) => holder.settled()));
      if (ledger.undelivered().length === 0 || Date.now() > deadline) return;
      await sleep(1_000);
    }
  } finally {
    await auditor.closeQuietly();
  }
}
