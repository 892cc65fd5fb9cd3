import { machineCpu, processTreeCpu } from '@didcomm-mpr/test-kit';

/**
 * CPU use over a phase, in percent of one core: the contender's process (the peer's child; the server), the server
 * child and its descendants (the embedded PostgreSQL, when used, is one), the load generator, and the whole machine.
 */
export class CpuMeter {
  private readonly started = performance.now();
  private readonly contender0: number;
  private readonly server0: { own: number; tree: number } | undefined;
  private readonly bench0 = process.cpuUsage();
  private readonly machine0 = machineCpu();

  constructor(
    /** The process under measurement besides the server (e.g. the peer's child), if any. */
    private readonly contender: { label: string; pid: number } | undefined,
    private readonly serverPid: number | undefined,
  ) {
    this.contender0 = contender ? processTreeCpu(contender.pid).own : Number.NaN;
    this.server0 = serverPid === undefined ? undefined : processTreeCpu(serverPid);
  }

  /** A one-line summary such as "CPU % of one core: peer 60, server 1, embedded PG 80, bench 5, other processes 3, machine 150 of 200". */
  read(): { text: string; machinePct: number; othersPct: number } {
    const seconds = (performance.now() - this.started) / 1000;
    const pct = (cpuSeconds: number) => (100 * cpuSeconds) / seconds;
    const bench = process.cpuUsage(this.bench0);
    const benchPct = pct((bench.user + bench.system) / 1e6);
    const machine = machineCpu();
    const machinePct = pct(machine.busy - this.machine0.busy);
    const contenderPct = this.contender ? pct(processTreeCpu(this.contender.pid).own - this.contender0) : Number.NaN;
    let serverPct = Number.NaN;
    let postgresPct = Number.NaN;
    if (this.serverPid !== undefined && this.server0) {
      const now = processTreeCpu(this.serverPid);
      serverPct = pct(now.own - this.server0.own);
      postgresPct = pct(now.tree - now.own - (this.server0.tree - this.server0.own));
      // The tree's sum drops when a backend with CPU time behind it exits during the phase: unknown, not negative.
      if (postgresPct < 0) postgresPct = Number.NaN;
    }
    const cores = Math.round((machine.total - this.machine0.total) / seconds);
    const known = [contenderPct, serverPct, postgresPct, benchPct].filter(Number.isFinite).reduce((sum, value) => sum + value, 0);
    // What none of those used: other processes, including a system PostgreSQL (BENCH_DATABASE_URL), and anything
    // else running on the machine.
    const othersPct = machinePct - known;
    const parts = [
      Number.isFinite(contenderPct) ? `${this.contender!.label} ${contenderPct.toFixed(0)}` : undefined,
      Number.isFinite(serverPct) ? `server ${serverPct.toFixed(0)}` : undefined,
      this.serverPid === undefined
        ? undefined
        : Number.isNaN(postgresPct)
          ? 'embedded PG n/a (a backend exited)'
          : postgresPct > 0.5
            ? `embedded PG ${postgresPct.toFixed(0)}`
            : undefined,
      `bench ${benchPct.toFixed(0)}`,
      `other processes ${Math.max(0, othersPct).toFixed(0)}`,
      `machine ${machinePct.toFixed(0)} of ${cores * 100}`,
    ].filter((part) => part !== undefined);
    return { text: `CPU % of one core: ${parts.join(', ')}`, machinePct, othersPct };
  }
}
