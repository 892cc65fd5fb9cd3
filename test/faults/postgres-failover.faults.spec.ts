import { ReplicatedPostgres, TcpProxy } from '@didcomm-mpr/test-kit';
import { expectNoLossNoDuplicate } from './support/fault-assertions';
import { FaultFleet, startFaultFleet } from './support/fault-fleet';
import { reportFault, rowFromVerdict, seconds } from './support/fault-report';
import { byProfile, faultsProfile, FAULTS_REDELIVERY_TIMEOUT_MS, MIN_LOAD_SHARE } from './support/faults-profile';
import { auditDelivery, LoadGenerator, singleInstanceLoad } from './support/load-generator';

/**
 * Fault 9: PostgreSQL fails over under load. A primary with a streaming replica (the machine's PostgreSQL 15
 * binaries), reached through one TCP endpoint (a proxy standing for the virtual IP, DNS name or pooler that moves
 * clients): the primary crashes (immediate shutdown), the replica is promoted, and the endpoint switches to it.
 * With synchronous replication (`synchronous_commit = on`, the replica in `synchronous_standby_names`) not one
 * acknowledged message may be lost or duplicated. Without it (full profile only) the run reports what the
 * asynchronous replica lost: the window an operator accepts. The server is never restarted.
 */

const profile = byProfile({
  short: { rate: 300, connections: 40, unheld: 10, beforeMs: 3_000, detectMs: 1_000, afterMs: 5_000 },
  full: { rate: 500, connections: 200, unheld: 40, beforeMs: 10_000, detectMs: 2_000, afterMs: 20_000 },
});
const modes: [string, boolean][] =
  faultsProfile() === 'full'
    ? [
        ['synchronous', true],
        ['asynchronous', false],
      ]
    : [['synchronous', true]];

jest.setTimeout(byProfile({ short: 180_000, full: 300_000 }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(modes)('fault 9: PostgreSQL failover to the %s replica under load', (_mode, synchronous) => {
  let pair: ReplicatedPostgres | undefined;
  let proxy: TcpProxy | undefined;
  let fleet: FaultFleet | undefined;
  let load: LoadGenerator | undefined;

  beforeAll(async () => {
    pair = await ReplicatedPostgres.start({ synchronous, database: 'mpr' });
    proxy = await TcpProxy.start('127.0.0.1', pair.primary.port);
    const endpoint = new URL(pair.urlOf(pair.primary));
    endpoint.port = String(proxy.port);
    fleet = await startFaultFleet({
      instances: 1,
      redisCluster: false,
      databaseUrl: endpoint.toString(),
      env: { DATABASE_QUERY_TIMEOUT_MS: '5000' },
    });
  });
  afterAll(async () => {
    await load?.close();
    await fleet?.close();
    await proxy?.close();
    await pair?.destroy();
  });

  it(
    synchronous
      ? 'loses and duplicates nothing, and serves again without a restart'
      : 'serves again without a restart; reports what was lost',
    async () => {
      const server = fleet!.servers[0];
      const setup = await singleInstanceLoad(server.wsUrl, 'fo', {
        connections: profile.connections,
        unheld: profile.unheld,
        ratePerSecond: profile.rate,
      });
      const { ledger, errors, pool, connections, unheld } = setup;
      load = setup.load;
      load.start();
      await sleep(profile.beforeMs);

      const before = await pair!.replicationState();
      ledger.causeEverywhere();
      const crashedAt = Date.now();
      await pair!.crashPrimary();
      // An operator's (or a failover manager's) detection time; meanwhile the endpoint still leads to the dead primary.
      await sleep(profile.detectMs);
      await pair!.promoteReplica();
      proxy!.switchTo('127.0.0.1', pair!.replica.port);
      proxy!.reset();
      const switchedAt = Date.now();

      let healthyMs: number | undefined;
      while (healthyMs === undefined && Date.now() - switchedAt < 30_000) {
        if ((await fetch(`${server.httpUrl}/health`)).status === 200) healthyMs = Date.now() - switchedAt;
        else await sleep(50);
      }
      await sleep(profile.afterMs);
      await load.finish();
      await auditDelivery({
        ledger,
        pool,
        connections: [...connections, ...unheld],
        holders: load.holders,
        patienceMs: FAULTS_REDELIVERY_TIMEOUT_MS + 5_000,
      });

      const verdict = ledger.verdict();
      const recovery = ledger.recoveryAfter(switchedAt);
      reportFault(
        rowFromVerdict(
          synchronous ? 9 : 10,
          `PostgreSQL failover to ${synchronous ? 'a synchronous' : 'an asynchronous'} replica at ${profile.rate} msg/s: primary crashed (immediate shutdown), replica promoted and the endpoint switched ${((switchedAt - crashedAt) / 1000).toFixed(1)} s later`,
          verdict,
          errors,
          `/health 200 ${seconds(healthyMs)}; add ${seconds(recovery.addMs)}; live ${seconds(recovery.liveMs)} (after the switch)`,
          `replica before the crash: ${before?.state} ${before?.sync_state}, ${before?.lag_bytes} bytes of WAL behind; same server pid, no restart`,
        ),
      );

      expect(healthyMs).toBeDefined();
      expect(server.exited()).toBe(false);
      expect(recovery.addMs).toBeDefined();
      expect(recovery.liveMs).toBeDefined();
      expect(verdict.acknowledged).toBeGreaterThan(((profile.beforeMs + profile.afterMs) / 1000) * profile.rate * MIN_LOAD_SHARE);
      if (synchronous) await expectNoLossNoDuplicate(verdict, pair!.urlOf(pair!.replica));
    },
  );
});
