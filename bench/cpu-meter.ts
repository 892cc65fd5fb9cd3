import { machineCpu, processTreeCpu } from '@didcomm-mpr/test-kit';

/**
 * CPU use over a phase, in percent of one core: the server's Node process, its descendants (the embedded
 * PostgreSQL, when used), the load generator, and the whole machine.
 */
export class CpuMeter {
  private readonly started = performance.now();
  private readonly server0: { own: number; tree: number } | undefined;
  private readonly bench0 = process.cpuUsage();
  private readonly machine0 = machineCpu();

  constructor(private readonly serverPid: number | undefined) {
    this.server0 = serverPid === undefined ? undefined : processTreeCpu(serverPid);
  }

  /** A one-line summary such as "CPU (% of one core): server 95, embedded PG 80, bench 40, machine 190 of 200". */
  read(): { text: string; serverPct: number; postgresPct: number; benchPct: number; othersPct: number; machinePct: number } {
    const seconds = (performance.now() - this.started) / 1000;
    const pct = (cpuSeconds: number) => (100 * cpuSeconds) / seconds;
    const bench = process.cpuUsage(this.bench0);
    const benchPct = pct((bench.user + bench.system) / 1e6);
    const machine = machineCpu();
    const machinePct = pct(machine.busy - this.machine0.busy);
    let serverPct = Number.NaN;
    let postgresPct = Number.NaN;
    if (this.serverPid !== undefined && this.server0) {
      const now = processTreeCpu(this.serverPid);
      serverPct = pct(now.own - this.server0.own);
      postgresPct = pct(now.tree - now.own - (this.server0.tree - this.server0.own));
    }
    const cores = Math.round((machine.total - this.machine0.total) / seconds);
    // What neither the server (nor its embedded PostgreSQL) nor the bench used: other processes, including a
    // system PostgreSQL when BENCH_DATABASE_URL is used, and anything else running on the machine.
    const othersPct = machinePct - (Number.isFinite(serverPct) ? serverPct : 0) - (Number.isFinite(postgresPct) ? postgresPct : 0) - benchPct;
    const parts = [
      Number.isFinite(serverPct) ? `server ${serverPct.toFixed(0)}` : undefined,
      Number.isFinite(postgresPct) && postgresPct > 0.5 ? `server's child PG ${postgresPct.toFixed(0)}` : undefined,
      `bench ${benchPct.toFixed(0)}`,
      `other processes ${Math.max(0, othersPct).toFixed(0)}`,
      `machine ${machinePct.toFixed(0)} of ${cores * 100}`,
    ].filter((part) => part !== undefined);
    return { text: `CPU % of one core: ${parts.join(', ')}`, serverPct, postgresPct, benchPct, othersPct, machinePct };
  }
}
