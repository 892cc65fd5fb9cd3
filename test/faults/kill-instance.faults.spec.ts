import { expectNoLossNoDuplicate } from './support/fault-assertions';
import { FaultFleet, startFaultFleet } from './support/fault-fleet';
import { reportFault, rowFromVerdict, seconds } from './support/fault-report';
import { byProfile, FAULTS_REDELIVERY_TIMEOUT_MS, MIN_LOAD_SHARE } from './support/faults-profile';
import { auditDelivery, faultLoad, LoadGenerator, runConnections } from './support/load-generator';

/**
 * Fault 1: `kill -9` of one of two instances under load, with live sessions on both. The instances share one
 * database and a Redis Cluster; the clients of the dead instance reconnect to the survivor, as mediators
 * behind a load balancer would: senders retry their unanswered adds with the same messageId, holders
 * re-register their sessions with `reclaim` and take the backlog.
 */

const profile = byProfile({
  short: { rate: 500, connections: 100, beforeMs: 3_000, afterMs: 5_000 },
  full: { rate: 1_000, connections: 400, beforeMs: 10_000, afterMs: 20_000 },
});

jest.setTimeout(byProfile({ short: 150_000, full: 300_000 }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('fault 1: kill -9 of one of two instances under load', () => {
  let fleet: FaultFleet | undefined;
  let load: LoadGenerator | undefined;

  beforeAll(async () => {
    fleet = await startFaultFleet({ instances: 2, redisCluster: true });
  });
  afterAll(async () => {
    await load?.close();
    await fleet?.close();
  });

  it('loses nothing acknowledged, duplicates nothing, and the survivor serves the moved sessions', async () => {
    const [survivor, victim] = fleet!.servers;
    const connections = runConnections('kill', profile.connections);
    // Even indexes start on the survivor, odd ones on the victim: sessions and senders on both.
    const set = faultLoad({ wsUrls: [survivor.wsUrl, victim.wsUrl], connections, sockets: 4, ratePerSecond: profile.rate });
    load = set.load;
    const { ledger, errors, pool } = set;
    await load.connect();
    load.start();
    await sleep(profile.beforeMs);

    ledger.causeEverywhere();
    pool.remove(victim.wsUrl);
    const killedAt = Date.now();
    victim.kill('SIGKILL');
    await victim.waitForExit();
    await sleep(profile.afterMs);
    await load.finish();
    const loadEndedAt = Date.now();
    await auditDelivery({ ledger, pool, connections, holders: load.holders, patienceMs: FAULTS_REDELIVERY_TIMEOUT_MS + 5_000 });

    const verdict = ledger.verdict();
    const moved = load.holders.filter((holder) => holder.socketLosses > 0);
    const reRegisteredMs = Math.max(...moved.map((holder) => (holder.reRegisteredAt ?? Number.NaN) - killedAt));
    const recovery = ledger.recoveryAfter(killedAt);
    const health = await fetch(`${survivor.httpUrl}/health`);
    reportFault(
      rowFromVerdict(
        1,
        `kill -9 of 1 of 2 instances at ${profile.rate} msg/s, ${connections.length} live sessions on both`,
        verdict,
        errors,
        `sessions re-registered ${seconds(reRegisteredMs)}; add ${seconds(recovery.addMs)}; live ${seconds(recovery.liveMs)}`,
        `${moved.length} of ${load.holders.length} holder sockets moved; load ${((loadEndedAt - killedAt + profile.beforeMs) / 1000).toFixed(0)} s; shortfall ${load.shortfall}`,
      ),
    );

    expect(victim.exited()).toBe(true);
    expect(health.status).toBe(200);
    expect(moved.length).toBe(2);
    expect(Number.isFinite(reRegisteredMs)).toBe(true);
    expect(recovery.liveMs).toBeDefined();
    await expectNoLossNoDuplicate(verdict, fleet!.databaseUrl);
    expect(verdict.acknowledged).toBeGreaterThan(((profile.beforeMs + profile.afterMs) / 1000) * profile.rate * MIN_LOAD_SHARE);
  });
});
