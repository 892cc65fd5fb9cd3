/**
 * A fuzz target: something of this repository that reads bytes from the other side of a socket, driven in-process
 * with one input at a time. `run` resolves when the input was handled as it must be, and rejects (with a
 * `FuzzFinding` or whatever the code under test threw) when not. Crashes (a rejection or a throw), hangs (no answer
 * within the runner's limit), unhandled rejections and answers that break the contract are all findings.
 */
export interface FuzzTarget {
  name: string;
  /** One line for reports: what the target reads and what it checks. */
  description: string;
  /** Words the mutator splices in (method and field names, protocol literals). */
  dictionary: string[];
  setup(): Promise<FuzzHarness>;
}

export interface FuzzHarness {
  run(input: Buffer): Promise<void>;
  close(): Promise<void>;
}

/** The code under test answered, but not as its contract says. */
export class FuzzFinding extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuzzFinding';
  }
}
