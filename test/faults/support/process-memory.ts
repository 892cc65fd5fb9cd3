import { rssKiB } from '@didcomm-mpr/test-kit';

/** Resident set size of a process in MiB (the server under test is our child); throws when /proc has none. */
function rssMiB(pid: number): number {
  const kib = rssKiB(pid);
  if (Number.isNaN(kib)) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return kib / 1024;
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
