import { readFileSync } from 'node:fs';

/** Resident set size of a process in MiB, from /proc (the server under test is our child). */
export function rssMiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

/** Samples RSS every `intervalMs` until stopped; keeps the peak and every sample. */
export class RssSampler {
  readonly samples: { at: number; mib: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 250,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  sample(): number {
    const mib = rssMiB(this.pid);
    this.samples.push({ at: Date.now(), mib });
    return mib;
  }

  get peak(): number {
    return Math.max(...this.samples.map((s) => s.mib));
  }
}
