import { randomBytes } from 'node:crypto';
import { createTestDatabase, JsonRpcWsClient, RpcCallError, RpcTransportError, sql, TcpProxy } from '@didcomm-mpr/test-kit';
import { expectNoLossNoDuplicate } from './support/fault-assertions';
import { FaultFleet, startFaultFleet } from './support/fault-fleet';
import { reportFault, rowFromVerdict, seconds } from './support/fault-report';
import { byProfile, FAULTS_REDELIVERY_TIMEOUT_MS, MIN_LOAD_SHARE } from './support/faults-profile';
import { auditDelivery, LoadGenerator, makePayload, singleInstanceLoad } from './support/load-generator';

/**
 * Fault 8: the network to PostgreSQL stalls under load (a proxy in front of the suite's PostgreSQL keeps every
 * socket open and carries nothing, as in a partition), in the middle of group commits, takes and acknowledgements.
 * Every caller gets the retryable -32000 within DATABASE_QUERY_TIMEOUT_MS (those waiting for a pooled connection
 * too); what was acknowledged stays; what was not answered is wholly applied or not at all (a retry with the same
 * messageId then stores nothing twice); the same server process serves again once the network heals.
 */

const profile = byProfile({
  short: { rate: 300, connections: 40, unheld: 10, beforeMs: 3_000, stallMs: 4_000, afterMs: 4_000 },
  full: { rate: 500, connections: 200, unheld: 40, beforeMs: 10_000, stallMs: 15_000, afterMs: 20_000 },
});
const QUERY_TIMEOUT_MS = 2_000;
/** "Within the deadline": the deadline plus room for a busy two-core machine. */
const WITHIN_DEADLINE_MS = QUERY_TIMEOUT_MS + 2_500;

jest.setTimeout(byProfile({ short: 150_000, full: 300_000 }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Probe {
  method: string;
  outcome: string;
  ms: number;
}

describe('fault 8: PostgreSQL stalled under load', () => {
  let proxy: TcpProxy | undefined;
  let dropDatabase: (() => Promise<void>) | undefined;
  let directUrl = '';
  let fleet: FaultFleet | undefined;
  let load: LoadGenerator | undefined;
  let probe: JsonRpcWsClient | undefined;

  beforeAll(async () => {
    const database = await createTestDatabase();
    dropDatabase = database.drop;
    directUrl = database.url;
    const target = new URL(database.url);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    target.host = `127.0.0.1:${proxy.port}`;
    fleet = await startFaultFleet({
      instances: 1,
      redisCluster: false,
      databaseUrl: target.toString(),
      env: { DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS) },
    });
  });
  afterAll(async () => {
    await probe?.closeQuietly();
    await load?.close();
    await proxy?.restore();
    await fleet?.close();
    await proxy?.close();
    await dropDatabase?.();
  });

  it('answers every caller with -32000 within the deadline, keeps what was acknowledged, and resumes by itself', async () => {
    const server = fleet!.servers[0];
    const setup = await singleInstanceLoad(server.wsUrl, 'pgs', {
      connections: profile.connections,
      unheld: profile.unheld,
      ratePerSecond: profile.rate,
    });
    const { ledger, errors, pool, connections, unheld } = setup;
    load = setup.load;
    const run = randomBytes(3).toString('hex');
    probe = await JsonRpcWsClient.connect(server.wsUrl, { record: false });
    // A backlog for the probe's takes, taken (sending) messages for its acknowledgements.
    const probeConnection = `pgs-${run}-probe`;
    for (let i = 0; i < 20; i++)
      await probe.call('addMessage', { connectionId: probeConnection, recipientDids: ['did:example:probe'], payload: makePayload(64) });
    const taken = (await probe.call<{ id: string }[]>('takeFromQueue', { connectionId: probeConnection, limit: 10 })).map(
      (message) => message.id,
    );
    load.start();
    await sleep(profile.beforeMs);

    const probes: Probe[] = [];
    const timed = (method: string, params: unknown) => {
      const started = Date.now();
      return probe!.call(method, params, 30_000).then(
        () => probes.push({ method, outcome: 'answered', ms: Date.now() - started }),
        (error: RpcCallError | RpcTransportError) =>
          probes.push({ method, outcome: `${error.code}${error.retryable ? ' retryable' : ''}`, ms: Date.now() - started }),
      );
    };
    // The burst leaves in the same tick as the stall: group commits, takes and acknowledgements are in flight when
    // the network goes silent, with the load's own statements on every pooled connection.
    ledger.causeEverywhere();
    const burst = [
      ...Array.from({ length: 10 }, (_, i) =>
        timed('addMessage', {
          connectionId: probeConnection,
          recipientDids: ['did:example:probe'],
          payload: makePayload(64),
          messageId: `${run}-burst-${i}`,
        }),
      ),
      ...Array.from({ length: 3 }, () => timed('takeFromQueue', { connectionId: probeConnection, limit: 2 })),
      timed('removeMessages', { connectionId: probeConnection, messageIds: taken }),
    ];
    proxy!.stall('hold');
    const stalledAt = Date.now();
    await Promise.all(burst);
    // Later calls during the stall: at once (the outage is known), each still within the deadline.
    const healthStatuses = new Set<number>();
    while (Date.now() - stalledAt < profile.stallMs) {
      await timed('addMessage', { connectionId: probeConnection, recipientDids: ['did:example:probe'], payload: makePayload(64) });
      await timed('takeFromQueue', { connectionId: probeConnection });
      healthStatuses.add((await fetch(`${server.httpUrl}/health`)).status);
      await sleep(200);
    }
    expect(await probe.call('ping')).toBe('pong');

    await proxy!.restore();
    const healedAt = Date.now();
    let healthyMs: number | undefined;
    while (healthyMs === undefined && Date.now() - healedAt < 30_000) {
      if ((await fetch(`${server.httpUrl}/health`)).status === 200) healthyMs = Date.now() - healedAt;
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

    // Not half-applied: every burst add the server did not answer is stored once or not at all, and the per-connection
    // quota bound (raised by the insert statement itself) never understates what is stored.
    const burstIds = Array.from({ length: 10 }, (_, i) => `${run}-burst-${i}`);
    const stored = await sql<{ id: string; n: string }>(
      directUrl,
      'SELECT id, count(*) AS n FROM queued_message WHERE id = ANY($1) GROUP BY id',
      [burstIds],
    );
    expect(stored.every((row) => row.n === '1')).toBe(true);
    const understated = await sql<{ connection_id: string }>(
      directUrl,
      `SELECT q.connection_id FROM (SELECT connection_id, count(*) AS n FROM queued_message GROUP BY connection_id) q
       LEFT JOIN queue_usage u USING (connection_id) WHERE u.messages IS NULL OR u.messages < q.n`,
      [],
    );
    expect(understated).toEqual([]);

    const verdict = ledger.verdict();
    const recovery = ledger.recoveryAfter(healedAt);
    const burstProbes = probes.slice(0, burst.length);
    const laterProbes = probes.slice(burst.length);
    const slowest = (list: Probe[]) => Math.max(...list.map((entry) => entry.ms));
    const outcomes = [...new Set(probes.map((entry) => entry.outcome))];
    reportFault(
      rowFromVerdict(
        8,
        `PostgreSQL network stalled ${(profile.stallMs / 1000).toFixed(0)} s under load at ${profile.rate} msg/s (DATABASE_QUERY_TIMEOUT_MS=${QUERY_TIMEOUT_MS}; group commits, takes and acknowledgements in flight)`,
        verdict,
        errors,
        `/health 200 ${seconds(healthyMs)}; add ${seconds(recovery.addMs)}; live ${seconds(recovery.liveMs)} (after the network healed)`,
        `burst in flight at the stall (10 adds, 3 takes, 1 acknowledgement): all ${[...new Set(burstProbes.map((entry) => entry.outcome))].join('/')}, slowest ${slowest(burstProbes)} ms; ` +
          `${laterProbes.length} later probe calls ${[...new Set(laterProbes.map((entry) => entry.outcome))].join('/')}, slowest ${slowest(laterProbes)} ms; ` +
          `/health ${[...healthStatuses].join('/')}; burst adds stored after healing: ${stored.length} of 10, each once; same server pid, no restart`,
      ),
    );

    expect(outcomes).toEqual(['-32000 retryable']);
    expect(slowest(probes)).toBeLessThan(WITHIN_DEADLINE_MS);
    expect([...healthStatuses]).toEqual([503]);
    expect(healthyMs).toBeDefined();
    expect(server.exited()).toBe(false);
    expect(recovery.addMs).toBeDefined();
    expect(recovery.liveMs).toBeDefined();
    await expectNoLossNoDuplicate(verdict, directUrl);
    expect(verdict.acknowledged).toBeGreaterThan(((profile.beforeMs + profile.afterMs) / 1000) * profile.rate * MIN_LOAD_SHARE);
  });
});
