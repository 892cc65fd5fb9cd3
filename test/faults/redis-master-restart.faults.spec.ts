import { expectNoLossNoDuplicate } from './support/fault-assertions';
import { FaultFleet, startFaultFleet } from './support/fault-fleet';
import { reportFault, rowFromVerdict, seconds } from './support/fault-report';
import { byProfile, FAULTS_REDELIVERY_TIMEOUT_MS, MIN_LOAD_SHARE } from './support/faults-profile';
import { auditDelivery, faultLoad, LoadGenerator, runConnections } from './support/load-generator';
import { connectionSlot, slotOwners } from '@didcomm-mpr/test-kit';

/**
 * Fault 3: a Redis Cluster master killed (SIGKILL) and restarted under load, two instances sharing the
 * cluster, holders and senders on both (so half the deliveries cross instances through Redis). Adds keep
 * committing while Redis is gone; messages whose notification could not be published stay pending and
 * takeable; live delivery resumes by itself once the cluster is healthy again.
 */

const profile = byProfile({
  short: { rate: 300, connections: 60, beforeMs: 3_000, downMs: 4_000, afterMs: 5_000 },
  full: { rate: 500, connections: 300, beforeMs: 10_000, downMs: 10_000, afterMs: 20_000 },
});

jest.setTimeout(byProfile({ short: 150_000, full: 300_000 }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('fault 3: a Redis Cluster master killed and restarted under load', () => {
  let fleet: FaultFleet | undefined;
  let load: LoadGenerator | undefined;

  beforeAll(async () => {
    fleet = await startFaultFleet({ instances: 2, redisCluster: true });
  });
  afterAll(async () => {
    await load?.close();
    await fleet?.close();
  });

  it('keeps every acknowledged message, and live delivery comes back on the restarted master', async () => {
    const [a, b] = fleet!.servers;
    const cluster = fleet!.cluster!;
    const victim = cluster.nodes[1];
    const connections = runConnections('redis', profile.connections);
    const ownerOf = await slotOwners(cluster.nodes[0].port);
    const onVictim = new Set(connections.filter((connectionId) => ownerOf(connectionSlot(connectionId)) === victim.address));
    expect(onVictim.size).toBeGreaterThan(0);

    const set = faultLoad({ wsUrls: [a.wsUrl, b.wsUrl], connections, sockets: 4, ratePerSecond: profile.rate });
    load = set.load;
    const { ledger, errors, pool } = set;
    await load.connect();
    load.start();
    await sleep(profile.beforeMs);

    ledger.causeEverywhere();
    const killedAt = Date.now();
    await victim.stop();
    await sleep(profile.downMs);
    await victim.start();
    await cluster.waitHealthy();
    const healthyAt = Date.now();
    let pubsubUpMs: number | undefined;
    while (pubsubUpMs === undefined && Date.now() - healthyAt < 30_000) {
      const states = await Promise.all(
        [a, b].map(async (server) => ((await (await fetch(`${server.httpUrl}/health`)).json()) as { status: string }).status),
      );
      if (states.every((state) => state === 'ok')) pubsubUpMs = Date.now() - healthyAt;
      else await sleep(50);
    }
    await sleep(profile.afterMs);
    await load.finish();
    await auditDelivery({ ledger, pool, connections, holders: load.holders, patienceMs: FAULTS_REDELIVERY_TIMEOUT_MS + 5_000 });

    const verdict = ledger.verdict();
    const recovery = ledger.recoveryAfter(healthyAt);
    // Live delivery again on a connection whose channel lives on the restarted master.
    const liveOnVictim = ledger.liveLog.find(
      (entry) => entry.at >= healthyAt && ledger.firstAttemptAt(entry.id) >= healthyAt && onVictim.has(ledger.connectionOf(entry.id)),
    );
    const liveOnVictimMs = liveOnVictim && liveOnVictim.at - healthyAt;
    const addErrorsDuringOutage = errors.since(killedAt);
    reportFault(
      rowFromVerdict(
        3,
        `Redis Cluster master SIGKILL + restart at ${profile.rate} msg/s (cluster unhealthy ${((healthyAt - killedAt) / 1000).toFixed(1)} s), 2 instances`,
        verdict,
        errors,
        `/health ok on both ${seconds(pubsubUpMs)}; add ${seconds(recovery.addMs)}; live ${seconds(recovery.liveMs)}, on the restarted master's slots ${seconds(liveOnVictimMs)} (after cluster_state:ok)`,
        `${onVictim.size} of ${connections.length} connections on the killed master; ${addErrorsDuringOutage} client errors from the kill on`,
      ),
    );

    expect(a.exited() || b.exited()).toBe(false);
    expect(pubsubUpMs).toBeDefined();
    expect(liveOnVictimMs).toBeDefined();
    await expectNoLossNoDuplicate(verdict, fleet!.databaseUrl);
    expect(verdict.acknowledged).toBeGreaterThan(
      ((profile.beforeMs + profile.downMs + profile.afterMs) / 1000) * profile.rate * MIN_LOAD_SHARE,
    );
  });
});
