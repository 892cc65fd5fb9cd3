import { readFileSync } from 'node:fs';
import os from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cores: string;
  ramGiB: string;
  node: string;
  postgres: string;
  date: string;
}

function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match) return match[1].trim();
  } catch {
    // not Linux
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

/** Online cores, plus the cgroup CPU quota when one caps them (a container may see more cores than it gets). */
function cores(): string {
  const online = os.availableParallelism?.() ?? os.cpus().length;
  try {
    const [quota, period] = readFileSync('/sys/fs/cgroup/cpu.max', 'utf8').trim().split(/\s+/);
    if (quota !== 'max') return `${online} (cgroup quota ${(Number(quota) / Number(period)).toFixed(2)} CPUs)`;
  } catch {
    // no cgroup v2 quota file
  }
  return String(online);
}

export function machineInfo(postgresVersion: string): MachineInfo {
  return {
    cpuModel: cpuModel(),
    cores: cores(),
    ramGiB: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    node: process.version,
    postgres: postgresVersion,
    date: new Date().toISOString(),
  };
}
