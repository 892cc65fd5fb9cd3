import {
  agentErrorSink,
  LiveSessionWiring,
  type CredoEventsLike,
  type CredoMessagePickupApiLike,
  type LiveSessionWiringOptions,
} from '../live-session.wiring';
import type { MessagePickupRepositoryClient } from '../message-pickup-repository.client';

/** The parts of a Credo 0.5 `Agent` the wiring uses. */
export interface Credo05AgentLike {
  events: CredoEventsLike;
  messagePickup: CredoMessagePickupApiLike;
  config?: { logger?: { error(message: string, data?: Record<string, unknown>): void } };
}

/** Credo 0.5's `MessagePickupEventTypes` values for live sessions. */
export const CREDO05_LIVE_SESSION_EVENTS = { saved: 'LiveSessionSaved', removed: 'LiveSessionRemoved' } as const;

/**
 * Wires a Credo 0.5 mediator agent's live pickup sessions to the server in one call: listens to
 * `LiveSessionSaved` / `LiveSessionRemoved` and calls `addLiveSession` / `removeLiveSession`, and hands
 * `messagesReceived` notifications to `agent.messagePickup.deliverMessages`. Call it once, after the
 * agent is created (before or after `initialize()`). Returns the wiring; `dispose()` undoes it.
 */
export function wireCredo05LiveSessions(
  agent: Credo05AgentLike,
  client: MessagePickupRepositoryClient,
  options: LiveSessionWiringOptions = {},
): LiveSessionWiring {
  return new LiveSessionWiring(
    client,
    agent.events,
    agent.messagePickup,
    CREDO05_LIVE_SESSION_EVENTS,
    options.onError ?? agentErrorSink(agent),
  );
}
