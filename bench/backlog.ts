/**
 * The backlog the drain and the live-beside-a-backlog figures run on, the same for every contender: one target
 * connection and `otherConnections` others, in one arrival order that interleaves them (as a real backlog would be
 * interleaved in arrival order and in the heap).
 */
export interface BacklogSpec {
  /** The connection that will be drained. */
  targetConnectionId: string;
  targetMessages: number;
  /** The other connections' ids; they hold `otherMessages` in total, round-robin. */
  otherConnectionIds: string[];
  otherMessages: number;
}

/**
 * The connection id of each row in arrival order: target rows spread evenly among the others' (1:1 when the counts
 * are equal), the others taking turns.
 */
export function backlogArrivalOrder(spec: BacklogSpec): string[] {
  const total = spec.targetMessages + spec.otherMessages;
  const order: string[] = new Array<string>(total);
  let other = 0;
  for (let g = 0; g < total; g++) {
    const isTarget = Math.floor(((g + 1) * spec.targetMessages) / total) > Math.floor((g * spec.targetMessages) / total);
    order[g] = isTarget ? spec.targetConnectionId : spec.otherConnectionIds[other++ % spec.otherConnectionIds.length];
  }
  return order;
}
