import 'reflect-metadata';
import { Agent, DependencyManager, InjectionSymbols, Kms, LogLevel, ConsoleLogger } from '@credo-ts/core';
import {
  DidCommBasicMessageEventTypes,
  DidCommMediatorPickupStrategy,
  DidCommMessageForwardingStrategy,
  DidCommModule,
  DidCommTransportEventTypes,
  DidCommWsOutboundTransport,
  type DidCommBasicMessageStateChangedEvent,
} from '@credo-ts/didcomm';
import { agentDependencies, DidCommWsInboundTransport, NodeInMemoryKeyManagementStorage } from '@credo-ts/node';
import { Credo06QueueTransportRepository, MessagePickupRepositoryClient, wireCredo06LiveSessions } from '@didcomm-mpr/client';
import { CredoDidcommV1KeyManagementService } from './credo-didcomm-v1.kms';
import { CredoInMemoryStorage } from './credo-in-memory.storage';

/** Modules and dependencies every test agent gets: Node key management with DIDComm v1, in-memory storage. */
/** What mediator instances of one deployment share (their database, in production). */
export interface SharedMediatorState {
  storage: CredoInMemoryStorage<never>;
  keys: NodeInMemoryKeyManagementStorage;
}

/** A fresh storage and key store, to share between mediator instances. */
export function sharedMediatorState(): SharedMediatorState {
  return { storage: new CredoInMemoryStorage(), keys: new NodeInMemoryKeyManagementStorage() };
}

function agentOptions(label: string, didcomm: DidCommModule, shared: SharedMediatorState = sharedMediatorState()) {
  const dependencyManager = new DependencyManager();
  dependencyManager.registerInstance(InjectionSymbols.StorageService, shared.storage);
  const config = {
    label,
    autoUpdateStorageOnStartup: true,
    logger: new ConsoleLogger(process.env.CREDO_LOG ? LogLevel.debug : LogLevel.off),
  } as never;
  const modules = {
    kms: new Kms.KeyManagementModule({ backends: [new CredoDidcommV1KeyManagementService(shared.keys)] }),
    didcomm,
  };
  return { options: { config, modules, dependencies: agentDependencies }, dependencyManager };
}

/**
 * A mediator agent listening on ws://127.0.0.1:port whose queue is the Message Pickup Repository at
 * `serverUrl`; it announces `endpoint` (default: its own address; a load balancer's for a fleet).
 */
export async function startMediator(
  label: string,
  port: number,
  serverUrl: string,
  options: { endpoint?: string; shared?: SharedMediatorState } = {},
) {
  const client = new MessagePickupRepositoryClient({ url: serverUrl, reconnectBaseDelayMs: 100 });
  await client.connect();
  const { options: agentSetup, dependencyManager } = agentOptions(
    label,
    new DidCommModule({
      endpoints: [options.endpoint ?? `ws://127.0.0.1:${port}`],
      transports: { inbound: [new DidCommWsInboundTransport({ port })], outbound: [new DidCommWsOutboundTransport()] },
      queueTransportRepository: new Credo06QueueTransportRepository({ client }),
      mediator: { autoAcceptMediationRequests: true, messageForwardingStrategy: DidCommMessageForwardingStrategy.QueueOnly },
      messagePickup: true,
      connections: { autoAcceptConnections: true },
    }),
    options.shared,
  );
  const agent = new Agent(agentSetup, dependencyManager);
  const wiring = wireCredo06LiveSessions(agent, client);
  await agent.initialize();
  return { agent, client, wiring };
}

/** A recipient (mobile wallet) agent with only an outbound WebSocket, picking up in live mode (pickup v2). */
export async function startRecipient(label: string) {
  const { options, dependencyManager } = agentOptions(
    label,
    new DidCommModule({
      transports: { outbound: [new DidCommWsOutboundTransport()] },
      mediationRecipient: { mediatorPickupStrategy: DidCommMediatorPickupStrategy.PickUpV2LiveMode },
      messagePickup: true,
      connections: { autoAcceptConnections: true },
    }),
  );
  const agent = new Agent(options, dependencyManager);
  await agent.initialize();
  return agent;
}

/** A sender agent with its own WebSocket endpoint. */
export async function startSender(label: string, port: number) {
  const { options, dependencyManager } = agentOptions(
    label,
    new DidCommModule({
      endpoints: [`ws://127.0.0.1:${port}`],
      transports: { inbound: [new DidCommWsInboundTransport({ port })], outbound: [new DidCommWsOutboundTransport()] },
      connections: { autoAcceptConnections: true },
    }),
  );
  const agent = new Agent(options, dependencyManager);
  await agent.initialize();
  return agent;
}

type AnyAgent = Agent<{ didcomm: DidCommModule<{ connections: { autoAcceptConnections: true } }> }>;

/** Connects `invitee` to `inviter` with an out-of-band invitation; resolves with both connection ids once completed. */
export async function connect(inviter: AnyAgent, invitee: AnyAgent): Promise<{ inviterConnectionId: string; inviteeConnectionId: string }> {
  const outOfBand = await inviter.didcomm.oob.createInvitation();
  const url = outOfBand.outOfBandInvitation.toUrl({ domain: 'https://example.org' });
  const { connectionRecord } = await invitee.didcomm.oob.receiveInvitationFromUrl(url, { label: 'invitee' });
  const inviteeConnection = await invitee.didcomm.connections.returnWhenIsConnected(connectionRecord!.id, { timeoutMs: 20_000 });
  const [inviterConnection] = await inviter.didcomm.connections.findAllByOutOfBandId(outOfBand.id);
  await inviter.didcomm.connections.returnWhenIsConnected(inviterConnection!.id, { timeoutMs: 20_000 });
  return { inviterConnectionId: inviterConnection!.id, inviteeConnectionId: inviteeConnection.id };
}

/** Resolves when the agent's next outbound WebSocket closes (or after `timeoutMs`, which Credo may never need). */
export function outboundSocketClosed(agent: AnyAgent, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      agent.events.off(DidCommTransportEventTypes.DidCommOutboundWebSocketClosedEvent, done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    agent.events.on(DidCommTransportEventTypes.DidCommOutboundWebSocketClosedEvent, done);
  });
}

/** Resolves with the content of the next basic message the agent receives. */
export function nextBasicMessage(agent: AnyAgent, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const listener = (event: DidCommBasicMessageStateChangedEvent) => {
      if (event.payload.basicMessageRecord.role !== 'receiver') return;
      clearTimeout(timer);
      agent.events.off(DidCommBasicMessageEventTypes.DidCommBasicMessageStateChanged, listener);
      resolve(event.payload.message.content);
    };
    const timer = setTimeout(() => {
      agent.events.off(DidCommBasicMessageEventTypes.DidCommBasicMessageStateChanged, listener);
      reject(new Error(`no basic message within ${timeoutMs} ms`));
    }, timeoutMs);
    agent.events.on(DidCommBasicMessageEventTypes.DidCommBasicMessageStateChanged, listener);
  });
}
