import { readdirSync, readFileSync } from 'node:fs';

/*
 * Readings of a process (the server under test) and of the machine from /proc, for memory and CPU figures.
 */

/** Linux USER_HZ; /proc reports CPU times in these ticks (100 on every mainstream kernel build). */
const TICKS_PER_SECOND = 100;

/** Resident set size of a process in KiB (VmRSS from /proc/<pid>/status), or NaN when unreadable. */
export function rssKiB(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** The soft "Max open files" limit of a process. */
export function openFilesLimit(pid: number | 'self' = 'self'): number {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    if (!match) return Number.NaN;
    return match[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match[1]);
  } catch {
    return Number.NaN;
  }
}

interface ProcStat {
  ppid: number;
  cpuSeconds: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: parse from the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) used so far by `pid` alone, and by it plus all its descendants. */
export function processTreeCpu(pid: number): { own: number; tree: number } {
  const stats = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) stats.set(Number(name), stat);
  }
  const own = stats.get(pid)?.cpuSeconds ?? Number.NaN;
  let tree = 0;
  for (const [candidate, stat] of stats) {
    let cursor: number | undefined = candidate;
    for (let depth = 0; cursor !== undefined && cursor > 1 && depth < 16; depth++) {
      if (cursor === pid) {
        tree += stat.cpuSeconds;
        break;
      }
      cursor = stats.get(cursor)?.ppid;
    }
  }
  return { own, tree };
}

/** Machine-wide busy and total CPU seconds from /proc/stat (all cores summed). */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = values[3] + (values[4] ?? 0);
  const total = values.slice(0, 8).reduce((sum, value) => sum + value, 0);
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
}

/** Machine-wide CPU use over `ms` while the caller is idle, in percent of one core (to flag a busy machine). */
export async function idleMachineLoad(ms = 1_000): Promise<{ busyPct: number; capacityPct: number }> {
  const before = machineCpu();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = machineCpu();
  const seconds = ms / 1000;
  return { busyPct: (100 * (after.busy - before.busy)) / seconds, capacityPct: (100 * (after.total - before.total)) / seconds };
}
