import { JsonRpcWsClient, RpcCallError, RpcTransportError } from '@didcomm-mpr/test-kit';
import { expectNoLossNoDuplicate } from './support/fault-assertions';
import { FaultFleet, startFaultFleet } from './support/fault-fleet';
import { reportFault, rowFromVerdict, seconds } from './support/fault-report';
import { byProfile, FAULTS_REDELIVERY_TIMEOUT_MS, MIN_LOAD_SHARE } from './support/faults-profile';
import { auditDelivery, faultLoad, LoadGenerator, makePayload, runConnections } from './support/load-generator';
import { OwnPostgres } from './support/own-postgres';

/**
 * Fault 2: PostgreSQL restarted (fast shutdown, then start) under load, on a PostgreSQL of our own. While it is
 * down, calls that need it fail at once with the retryable -32000 and /health answers 503; once it is back
 * the same server process serves again by itself (no restart), and nothing acknowledged is lost.
 */

const profile = byProfile({
  short: { rate: 300, connections: 50, beforeMs: 3_000, downMs: 3_000, afterMs: 4_000 },
  full: { rate: 500, connections: 200, beforeMs: 10_000, downMs: 10_000, afterMs: 20_000 },
});
/** "At once": well under any client timeout, even on a busy two-core machine. */
const FAIL_FAST_MS = 2_000;

jest.setTimeout(byProfile({ short: 150_000, full: 300_000 }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('fault 2: PostgreSQL restarted under load', () => {
  let postgres: OwnPostgres | undefined;
  let fleet: FaultFleet | undefined;
  let load: LoadGenerator | undefined;
  let probe: JsonRpcWsClient | undefined;

  beforeAll(async () => {
    postgres = await OwnPostgres.start('faults');
    fleet = await startFaultFleet({ instances: 1, redisCluster: false, databaseUrl: postgres.url });
  });
  afterAll(async () => {
    await probe?.closeQuietly();
    await load?.close();
    await fleet?.close();
    await postgres?.destroy();
  });

  it('fails storage calls at once with -32000 and 503 while down, resumes without a restart, loses nothing', async () => {
    const server = fleet!.servers[0];
    const connections = runConnections('pg', profile.connections);
    const set = faultLoad({ wsUrls: [server.wsUrl], connections, sockets: 2, ratePerSecond: profile.rate });
    load = set.load;
    const { ledger, errors, pool } = set;
    await load.connect();
    probe = await JsonRpcWsClient.connect(server.wsUrl, { record: false });
    load.start();
    await sleep(profile.beforeMs);

    ledger.causeEverywhere();
    const stopStartedAt = Date.now();
    await postgres!.stop();
    const downAt = Date.now();

    // While it is down: each storage call fails fast and retryably; /health says 503; ping still works.
    const probeLatencies: number[] = [];
    const probeErrors: string[] = [];
    const healthStatuses = new Set<number>();
    while (Date.now() - downAt < profile.downMs) {
      const started = Date.now();
      const outcome = await probe
        .call(
          'addMessage',
          { connectionId: `${connections[0]}-probe`, recipientDids: ['did:example:probe'], payload: makePayload(64) },
          10_000,
        )
        .then(
          () => 'succeeded',
          (error: RpcCallError | RpcTransportError) => `${error.code}${error.retryable ? ' retryable' : ''}`,
        );
      probeLatencies.push(Date.now() - started);
      probeErrors.push(outcome);
      healthStatuses.add((await fetch(`${server.httpUrl}/health`)).status);
      await sleep(200);
    }
    expect(await probe.call('ping')).toBe('pong');

    const restartAt = Date.now();
    await postgres!.restart();
    const backAt = Date.now();
    let healthyMs: number | undefined;
    while (healthyMs === undefined && Date.now() - backAt < 30_000) {
      if ((await fetch(`${server.httpUrl}/health`)).status === 200) healthyMs = Date.now() - backAt;
      else await sleep(50);
    }
    await sleep(profile.afterMs);
    await load.finish();
    await auditDelivery({ ledger, pool, connections, holders: load.holders, patienceMs: FAULTS_REDELIVERY_TIMEOUT_MS + 5_000 });

    const verdict = ledger.verdict();
    const recovery = ledger.recoveryAfter(backAt);
    reportFault(
      rowFromVerdict(
        2,
        `PostgreSQL fast shutdown + start at ${profile.rate} msg/s (down ${((backAt - stopStartedAt) / 1000).toFixed(1)} s)`,
        verdict,
        errors,
        `/health 200 ${seconds(healthyMs)}; add ${seconds(recovery.addMs)}; live ${seconds(recovery.liveMs)} (after PostgreSQL accepted connections)`,
        `while down: ${probeErrors.length} probe adds all ${[...new Set(probeErrors)].join('/')}, slowest ${Math.max(...probeLatencies)} ms, /health ${[...healthStatuses].join('/')}; fast shutdown took ${downAt - stopStartedAt} ms, start ${backAt - restartAt} ms; same server pid, no restart`,
      ),
    );

    expect(new Set(probeErrors)).toEqual(new Set(['-32000 retryable']));
    expect(Math.max(...probeLatencies)).toBeLessThan(FAIL_FAST_MS);
    expect([...healthStatuses]).toEqual([503]);
    expect(healthyMs).toBeDefined();
    expect(server.exited()).toBe(false);
    expect(recovery.addMs).toBeDefined();
    expect(recovery.liveMs).toBeDefined();
    await expectNoLossNoDuplicate(verdict, postgres!.url);
    expect(verdict.acknowledged).toBeGreaterThan(((profile.beforeMs + profile.afterMs) / 1000) * profile.rate * MIN_LOAD_SHARE);
  });
});
