/**
 * What the bench and the peer's process say to each other over the child's IPC channel (one JSON message each way
 * per request): the bench asks for one measurement, the peer's process runs it in-process, against the library,
 * and answers with the figures, so that nothing between the two processes is inside a measured call.
 */
import type { BacklogSpec } from '../backlog';
import type { ScheduleOptions } from '../load-loops';

/** Where the peer's database is; `port` replaces the library's hard-coded 5432 and reaches it as PGPORT too. */
export interface PeerDatabase {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export type PeerRequest =
  | { op: 'init'; database: PeerDatabase; payloads: string[]; recipientDid: string }
  | { op: 'add'; callers: number; connectionIds: string[]; warmupMs: number; measureMs: number }
  | { op: 'load'; spec: BacklogSpec; inFlight: number }
  | { op: 'drain'; connectionId: string; expected: number; maxMs: number }
  | { op: 'live'; connectionIds: string[]; schedule: ScheduleOptions }
  | { op: 'shutdown' };

export interface PeerEnvelope {
  id: number;
  request: PeerRequest;
}

export type PeerReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
