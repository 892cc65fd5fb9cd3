import { expectNoLossNoDuplicate } from './support/fault-assertions';
import { FaultFleet, startFaultFleet } from './support/fault-fleet';
import { reportFault, rowFromVerdict } from './support/fault-report';
import { byProfile, FAULTS_REDELIVERY_TIMEOUT_MS, MIN_LOAD_SHARE } from './support/faults-profile';
import { auditDelivery, faultLoad, LoadGenerator, runConnections } from './support/load-generator';
import { RssSampler } from './support/process-memory';

/**
 * Fault 6: a soak at 500 messages/s with session churn (sessions removed and registered again every second,
 * holder sockets closed and reopened every few seconds): the server's memory stays flat, nothing is lost.
 * RSS is compared after a warm-up (code loaded, pools and caches filled) with the end of the run.
 */

const profile = byProfile({
  short: { rate: 500, connections: 100, durationMs: 30_000, warmUpMs: 8_000, sampleMs: 2_000, minLoadShare: MIN_LOAD_SHARE },
  full: { rate: 500, connections: 500, durationMs: 600_000, warmUpMs: 60_000, sampleMs: 10_000, minLoadShare: 0.8 },
});
const CHURN_EVERY_MS = 1_000;
const SOCKET_CYCLE_EVERY = 5;
/** RSS growth from the end of the warm-up to the end of the run that still counts as flat. */
const MAX_RSS_GROWTH_MIB = 64;

jest.setTimeout(profile.durationMs + byProfile({ short: 120_000, full: 300_000 }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('fault 6: soak at 500 msg/s with session churn', () => {
  let fleet: FaultFleet | undefined;
  let load: LoadGenerator | undefined;
  let sampler: RssSampler | undefined;

  beforeAll(async () => {
    fleet = await startFaultFleet({ instances: 1, redisCluster: false });
  });
  afterAll(async () => {
    sampler?.stop();
    await load?.close();
    await fleet?.close();
  });

  it('keeps memory flat and every acknowledged message accounted for', async () => {
    const server = fleet!.servers[0];
    const connections = runConnections('soak', profile.connections);
    const set = faultLoad({ wsUrls: [server.wsUrl], connections, sockets: 4, ratePerSecond: profile.rate });
    load = set.load;
    const { ledger, errors, pool } = set;
    await load.connect();
    sampler = new RssSampler(server.pid, profile.sampleMs);
    sampler.start();
    const startedAt = Date.now();
    load.start();

    let sessionCycles = 0;
    let socketCycles = 0;
    let startRss: number | undefined;
    for (let tick = 1; Date.now() - startedAt < profile.durationMs; tick++) {
      await sleep(CHURN_EVERY_MS);
      if (startRss === undefined && Date.now() - startedAt >= profile.warmUpMs) startRss = sampler.sample();
      const holder = load.holders[Math.floor(Math.random() * load.holders.length)];
      if (tick % SOCKET_CYCLE_EVERY === 0) {
        await holder.cycleSocket();
        socketCycles++;
      } else {
        await holder.cycleSession(holder.connections[Math.floor(Math.random() * holder.connections.length)]);
        sessionCycles++;
      }
    }
    const endRss = sampler.sample();
    sampler.stop();
    const loadMs = Date.now() - startedAt;
    await load.finish();
    await auditDelivery({ ledger, pool, connections, holders: load.holders, patienceMs: FAULTS_REDELIVERY_TIMEOUT_MS + 5_000 });

    const verdict = ledger.verdict();
    const after = sampler.samples.filter((s) => s.at - startedAt >= profile.warmUpMs).map((s) => s.mib);
    reportFault(
      rowFromVerdict(
        6,
        `soak ${(loadMs / 60_000).toFixed(1)} min at ${profile.rate} msg/s, ${connections.length} sessions, churn every ${CHURN_EVERY_MS / 1000} s`,
        verdict,
        errors,
        'n/a (no outage)',
        `server RSS ${startRss?.toFixed(0)} MiB after ${profile.warmUpMs / 1000} s warm-up, ${endRss.toFixed(0)} MiB at the end (min ${Math.min(...after).toFixed(0)}, max ${Math.max(...after).toFixed(0)} in between); ${sessionCycles} session and ${socketCycles} socket cycles; shortfall ${load.shortfall}`,
      ),
    );

    expect(startRss).toBeDefined();
    expect(endRss - startRss!).toBeLessThan(MAX_RSS_GROWTH_MIB);
    expect(server.exited()).toBe(false);
    await expectNoLossNoDuplicate(verdict, fleet!.databaseUrl);
    // The run must have carried real load: the full soak, which runs alone, 80% of its nominal rate.
    expect(verdict.acknowledged).toBeGreaterThan((profile.durationMs / 1000) * profile.rate * profile.minLoadShare);
  });
});
