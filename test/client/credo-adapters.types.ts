/*
 * Type-level tests, checked by `tsc --noEmit -p tsconfig.json` (the first step of `npm test`): the
 * adapters and wiring helpers must be accepted where Credo expects its own interfaces, on the 0.5 line
 * (credo-core-05 = @credo-ts/core 0.5.19), on the 0.6 release (credo-didcomm-06 = @credo-ts/didcomm
 * 0.6.3) and on the 0.6 alpha the end-to-end test runs (@credo-ts/didcomm 0.6.0-alpha). Nothing here runs.
 */
import type { Agent as Agent05, MessagePickupModule, MessagePickupRepository, QueuedMessage as QueuedMessage05 } from 'credo-core-05';
import type {
  DidCommQueueTransportRepository as QueueRepository063,
  DidCommModuleConfigOptions as DidCommOptions063,
} from 'credo-didcomm-06';
import type { Agent as Agent06 } from '@credo-ts/core';
import type {
  DidCommModule,
  DidCommQueueTransportRepository as QueueRepositoryAlpha,
  DidCommModuleConfigOptions as DidCommOptionsAlpha,
  QueuedDidCommMessage,
} from '@credo-ts/didcomm';
import {
  Credo05MessagePickupRepository,
  Credo06QueueTransportRepository,
  MessagePickupRepositoryClient,
  wireCredo05LiveSessions,
  wireCredo06LiveSessions,
} from '@didcomm-mpr/client';

declare const client: MessagePickupRepositoryClient;

export function credo05(agent: Agent05<{ messagePickup: MessagePickupModule }>): void {
  const repository: MessagePickupRepository = new Credo05MessagePickupRepository({ client });
  const taken: Promise<QueuedMessage05[]> = new Credo05MessagePickupRepository({ client }).takeFromQueue({ connectionId: 'c' });
  // `receivedAt` is a Date, as Credo's QueuedMessage has it.
  const receivedAt: Promise<Date> = taken.then((messages) => messages[0]!.receivedAt!);
  void repository;
  void receivedAt;
  wireCredo05LiveSessions(agent, client).dispose();
}

export function credo063(): void {
  const repository: QueueRepository063 = new Credo06QueueTransportRepository({ client });
  const options: DidCommOptions063 = { queueTransportRepository: new Credo06QueueTransportRepository({ client }) };
  void repository;
  void options;
}

export function credo06Alpha(agent: Agent06<{ didcomm: DidCommModule<{ messagePickup: true; mediator: true }> }>): void {
  const repository: QueueRepositoryAlpha = new Credo06QueueTransportRepository({ client });
  const options: DidCommOptionsAlpha = { queueTransportRepository: repository };
  const taken: Promise<QueuedDidCommMessage[]> = new Credo06QueueTransportRepository({ client }).takeFromQueue({}, { connectionId: 'c' });
  void options;
  void taken;
  wireCredo06LiveSessions(agent, client).dispose();
}

// The 0.5 adapter is not a 0.6 repository (agentContext first), and the other way round.
// @ts-expect-error the 0.5 method shapes lack agentContext
export const wrongLine06: QueueRepositoryAlpha = new Credo05MessagePickupRepository({ client });
// @ts-expect-error the 0.6 method shapes take agentContext first
export const wrongLine05: MessagePickupRepository = new Credo06QueueTransportRepository({ client });
