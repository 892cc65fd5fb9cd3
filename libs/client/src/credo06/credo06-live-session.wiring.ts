import {
  agentErrorSink,
  LiveSessionWiring,
  type CredoEventsLike,
  type CredoMessagePickupApiLike,
  type LiveSessionWiringOptions,
} from '../live-session.wiring';
import type { MessagePickupRepositoryClient } from '../message-pickup-repository.client';

/** The parts of a Credo 0.6 `Agent` (with the `didcomm` module and message pickup enabled) the wiring uses. */
export interface Credo06AgentLike {
  events: CredoEventsLike;
  didcomm: { messagePickup: CredoMessagePickupApiLike };
  config?: { logger?: { error(message: string, data?: Record<string, unknown>): void } };
}

/** Credo 0.6's `DidCommMessagePickupEventTypes` values for live sessions. */
export const CREDO06_LIVE_SESSION_EVENTS = {
  saved: 'DidCommMessagePickupLiveSessionSaved',
  removed: 'DidCommMessagePickupLiveSessionRemoved',
} as const;

/**
 * Wires a Credo 0.6 mediator agent's live pickup sessions to the server in one call: listens to
 * `DidCommMessagePickupLiveSessionSaved` / `…Removed` and calls `addLiveSession` / `removeLiveSession`,
 * and hands `messagesReceived` notifications to `agent.didcomm.messagePickup.deliverMessages`. Call it
 * once, after the agent is created. Returns the wiring; `dispose()` undoes it.
 */
export function wireCredo06LiveSessions(
  agent: Credo06AgentLike,
  client: MessagePickupRepositoryClient,
  options: LiveSessionWiringOptions = {},
): LiveSessionWiring {
  return new LiveSessionWiring(
    client,
    agent.events,
    agent.didcomm.messagePickup,
    CREDO06_LIVE_SESSION_EVENTS,
    options.onError ?? agentErrorSink(agent),
  );
}
