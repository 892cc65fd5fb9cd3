import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

/** Debian's service policy hook: while it exits 101, installing a package starts no service. */
const POLICY_RC_D = '/usr/sbin/policy-rc.d';

function which(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

/** Pids of processes named `prometheus` (the daemon the package ships). */
function prometheusDaemons(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'prometheus';
      } catch {
        return false;
      }
    })
    .map(Number);
}

function aptGet(...args: string[]): void {
  execFileSync('apt-get', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    timeout: 600_000,
  });
}

/**
 * The path of `promtool`, installing Debian's `prometheus` package (which ships it) when it is missing: CI runs as root
 * with the Debian registry reachable. The install starts no Prometheus daemon: a policy-rc.d that refuses service
 * starts is in place during it (Debian's own mechanism), recommended packages (the node exporter) are left out, and a
 * daemon that appeared anyway is stopped.
 */
export function ensurePromtool(log: (line: string) => void): string {
  const present = which('promtool');
  if (present) return present;
  if (process.getuid?.() !== 0) {
    throw new Error(
      "promtool is missing and this is not root: install Debian's prometheus package (apt-get install --no-install-recommends prometheus)",
    );
  }
  log(
    "promtool not found: installing Debian's prometheus package for it (apt-get install --no-install-recommends prometheus; no service is started)",
  );
  const before = new Set(prometheusDaemons());
  const ownPolicy = !existsSync(POLICY_RC_D);
  if (ownPolicy)
    writeFileSync(POLICY_RC_D, '#!/bin/sh\n# Written for the duration of a test install: start no service.\nexit 101\n', { mode: 0o755 });
  try {
    try {
      aptGet('install', '-y', '--no-install-recommends', 'prometheus');
    } catch {
      // A fresh machine has no package lists yet.
      aptGet('update');
      aptGet('install', '-y', '--no-install-recommends', 'prometheus');
    }
  } finally {
    if (ownPolicy) rmSync(POLICY_RC_D, { force: true });
  }
  for (const pid of prometheusDaemons().filter((pid) => !before.has(pid))) {
    log(`stopping the Prometheus daemon (pid ${pid}) the package install started`);
    process.kill(pid, 'SIGTERM');
  }
  const installed = which('promtool');
  if (!installed) throw new Error('the prometheus package was installed but promtool is not on PATH');
  log(`promtool installed: ${installed}`);
  return installed;
}
