/**
 * The in-process peer: `@credo-ts/didcomm-transport-queue-postgres` 0.0.1 loaded in the peer's process
 * (queue-peer.process.ts), as a Credo mediator loads it, and driven in-process by the same loops the bench drives
 * the server with (load-loops.ts).
 *
 * The library is ESM-only and needs @credo-ts/core and @credo-ts/didcomm 0.6.3 exactly, so it is installed in
 * bench/peer/node_modules (bench/peer/package-lock.json) and loaded from there with Node's require(esm). Its API is
 * described by the few members the bench uses (peer-library.types.ts), so that the repository typechecks without
 * that install.
 *
 * It runs without a full Agent, on the real DependencyManager, AgentConfig, EventEmitter and AgentContext of
 * @credo-ts/core and the real DidCommMessagePickupSessionService of @credo-ts/didcomm (live sessions, and the
 * LiveSessionSaved / LiveSessionRemoved events the library listens to). DidCommMessagePickupApi is a stub: the real
 * one needs a wallet (connection records), DIDComm packing and an outbound transport to deliver, all of which are
 * the mediator's costs with either queue. The stub finds sessions through the real session service as the real
 * API does, and hands delivered messages to the bench's holder, which acknowledges them with removeMessages.
 */
import { EventEmitter as NodeEventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { nowMs, sleep } from '../async-utils';
import { backlogArrivalOrder } from '../backlog';
import { closedLoop, DeliveryRecorder, drainLoop, runSchedule } from '../load-loops';
import { MessagePickupApiStub } from './message-pickup-api.stub';
import type {
  AgentContext,
  CredoCore,
  CredoDidComm,
  EncryptedMessage,
  Pool,
  SessionService,
  TransportQueuePostgres,
} from './peer-library.types';
import { PeerRequest } from './peer-protocol.types';

/** Resolves from bench/peer/node_modules, whatever this file is run from. */
const peerRequire = createRequire(path.join(__dirname, 'package.json'));

export class QueuePeer {
  private constructor(
    private readonly queue: TransportQueuePostgres,
    private readonly agentContext: AgentContext,
    private readonly sessions: SessionService,
    private readonly api: MessagePickupApiStub,
    private readonly holderRole: string,
    private readonly payloads: EncryptedMessage[],
    private readonly recipientDids: string[],
  ) {}

  static async start(request: Extract<PeerRequest, { op: 'init' }>): Promise<QueuePeer> {
    const core = peerRequire('@credo-ts/core') as CredoCore;
    const didcomm = peerRequire('@credo-ts/didcomm') as CredoDidComm;
    const { DidCommTransportQueuePostgres } = peerRequire('@credo-ts/didcomm-transport-queue-postgres') as {
      DidCommTransportQueuePostgres: new (options: {
        postgresUser: string;
        postgresPassword: string;
        postgresHost: string;
        postgresDatabaseName: string;
      }) => TransportQueuePostgres;
    };
    const { Pool } = peerRequire('pg') as { Pool: new (options: Record<string, unknown>) => Pool };
    const { Subject } = peerRequire('rxjs') as { Subject: new () => { next(value: boolean): void } };

    const dependencies = { EventEmitterClass: NodeEventEmitter };
    const stop$ = new Subject();
    const dependencyManager = new core.DependencyManager();
    dependencyManager.registerInstance(core.AgentConfig, new core.AgentConfig({ label: 'bench-peer' }, dependencies));
    dependencyManager.registerInstance(core.InjectionSymbols.AgentDependencies, dependencies);
    dependencyManager.registerInstance(core.InjectionSymbols.Stop$, stop$);
    const events = new core.EventEmitter(dependencies, stop$);
    dependencyManager.registerInstance(core.EventEmitter, events);
    const agentContext = new core.AgentContext({ dependencyManager, contextCorrelationId: 'bench-peer', isRootAgentContext: true });
    dependencyManager.registerInstance(core.AgentContext, agentContext);
    const sessions = new didcomm.DidCommMessagePickupSessionService();
    dependencyManager.registerInstance(didcomm.DidCommMessagePickupSessionService, sessions);
    sessions.start(agentContext);
    const api = new MessagePickupApiStub(sessions, agentContext);
    dependencyManager.registerInstance(didcomm.DidCommMessagePickupApi, api);

    const { database } = request;
    const queue = new DidCommTransportQueuePostgres({
      postgresUser: database.user,
      postgresPassword: database.password,
      postgresHost: database.host,
      postgresDatabaseName: database.database,
    });
    await queue.initialize({ context: agentContext, events });
    // initialize() builds the message pool with port 5432 written in; the rest of the library (its migrations, its
    // LISTEN connection) takes PGPORT, which this process was started with. Same pool, other port.
    const hardCoded = queue.messagesCollection;
    if (!hardCoded) throw new Error('initialize() left no messagesCollection: the library changed, read its source again');
    // (pg keeps the password out of the pool's enumerable options, so it is given again.)
    queue.messagesCollection = new Pool({ ...hardCoded.options, password: database.password, port: database.port });
    await hardCoded.end();
    await queue.messagesCollection.query('SELECT 1');

    const payloads = request.payloads.map((text) => JSON.parse(text) as EncryptedMessage);
    return new QueuePeer(queue, agentContext, sessions, api, didcomm.DidCommMessagePickupSessionRole.MessageHolder, payloads, [
      request.recipientDid,
    ]);
  }

  async handle(request: PeerRequest): Promise<unknown> {
    switch (request.op) {
      case 'add':
        return closedLoop({ callers: request.callers, warmupMs: request.warmupMs, measureMs: request.measureMs }, (caller, i) =>
          this.add(request.connectionIds[(caller + i) % request.connectionIds.length], this.payloads[(caller + i) % this.payloads.length]),
        );
      case 'load':
        return this.load(request);
      case 'drain':
        return drainLoop(
          { expected: request.expected, maxMs: request.maxMs },
          async () =>
            (
              await this.queue.takeFromQueue(this.agentContext, { connectionId: request.connectionId, limit: 100, deleteMessages: false })
            ).map((m) => m.id),
          (messageIds) => this.queue.removeMessages(this.agentContext, { connectionId: request.connectionId, messageIds }),
        );
      case 'live':
        return this.live(request);
      default:
        throw new Error(`unknown request ${request.op}`);
    }
  }

  async shutdown(): Promise<void> {
    await this.queue.shutdown(this.agentContext);
    await this.queue.pubSubInstance.close();
  }

  private add(connectionId: string, payload: EncryptedMessage): Promise<string> {
    return this.queue.addMessage(this.agentContext, { connectionId, recipientDids: this.recipientDids, payload });
  }

  private async load(request: Extract<PeerRequest, { op: 'load' }>): Promise<unknown> {
    const order = backlogArrivalOrder(request.spec);
    let next = 0;
    const started = nowMs();
    await Promise.all(
      Array.from({ length: request.inFlight }, async () => {
        while (next < order.length) {
          const g = next++;
          await this.add(order[g], this.payloads[g % this.payloads.length]);
        }
      }),
    );
    const seconds = (nowMs() - started) / 1000;
    return { rows: order.length, seconds, rate: order.length / seconds, how: `addMessage, ${request.inFlight} in flight` };
  }

  /**
   * Live mode as the library has it: an add for a connection with a live session here inserts the message as
   * 'sending' and calls deliverMessages at once. Latency: the addMessage call → that delivery. Each message carries
   * a payload object of its own, by which the delivery is matched to its send (the library makes the id).
   */
  private async live(request: Extract<PeerRequest, { op: 'live' }>): Promise<unknown> {
    const ids = request.connectionIds;
    await this.holdSessions(ids);
    const recorder = new DeliveryRecorder<EncryptedMessage>();
    this.api.onDeliver = (session, messages) => {
      const at = nowMs();
      for (const message of messages) recorder.delivered(message.encryptedMessage, at);
      recorder.acknowledge(
        this.queue.removeMessages(this.agentContext, { connectionId: session.connectionId, messageIds: messages.map((m) => m.id) }),
      );
    };
    try {
      const run = await runSchedule(request.schedule, (i, measured, at) => {
        const payload = { ...this.payloads[i % this.payloads.length] };
        recorder.sent(payload, at, this.add(ids[i % ids.length], payload), measured);
      });
      await recorder.settle();
      // No per-message array over IPC for the peer's 'latencies': the summary is what the report uses.
      return { ...recorder.result(run), latencies: [] };
    } finally {
      this.api.onDeliver = undefined;
      await this.releaseSessions(ids);
    }
  }

  /** Saves a live session per connection; the library records each in its live_session table on LiveSessionSaved. */
  private async holdSessions(connectionIds: string[]): Promise<void> {
    for (const connectionId of connectionIds) {
      this.sessions.saveLiveSession(this.agentContext, {
        connectionId,
        protocolVersion: 'v2',
        role: this.holderRole,
        transportSessionId: randomUUID(),
      });
    }
    await this.waitForSessionRows(connectionIds, connectionIds.length);
  }

  private async releaseSessions(connectionIds: string[]): Promise<void> {
    for (const connectionId of connectionIds) this.sessions.removeLiveSession(this.agentContext, { connectionId });
    await this.waitForSessionRows(connectionIds, 0);
  }

  /** The library writes live_session from event handlers it does not wait for: wait for the rows (bounded). */
  private async waitForSessionRows(connectionIds: string[], expected: number): Promise<void> {
    const pool = this.queue.messagesCollection!;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const rows = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM live_session WHERE connection_id = ANY($1)', [
        connectionIds,
      ]);
      if (rows.rows[0].n === expected) return;
      if (Date.now() > deadline)
        throw new Error(`live_session holds ${rows.rows[0].n} rows of the ${connectionIds.length} connections, expected ${expected}`);
      await sleep(50);
    }
  }
}
