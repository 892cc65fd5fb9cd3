import { JsonRpcWsClient, metricValue, RpcCallError, RpcTransportError, TcpProxy } from '@didcomm-mpr/test-kit';
import { expectNoLossNoDuplicate } from './support/fault-assertions';
import { FaultFleet, startFaultFleet } from './support/fault-fleet';
import { reportFault, rowFromVerdict, seconds } from './support/fault-report';
import { byProfile, FAULTS_REDELIVERY_TIMEOUT_MS, MIN_LOAD_SHARE } from './support/faults-profile';
import { auditDelivery, faultLoad, LoadGenerator, runConnections } from './support/load-generator';

/**
 * Fault 7: the network between one of two instances and the Redis Cluster stalls under load: instance A reaches the
 * three masters through proxies of its own (REDIS_NAT_MAP maps the addresses the nodes announce to them), which keep
 * every socket open and carry nothing, as in a partition; B reaches the cluster directly. Session calls on A fail
 * with the retryable -32000 within REDIS_COMMAND_TIMEOUT_MS, adds keep committing, /health says degraded (200); A's
 * lease lapses, so A stops delivering to its sessions (fencing) until it has renewed the lease and the registry
 * confirmed them; once the network heals, everything resumes with no restart, and nothing acknowledged is lost.
 */

const profile = byProfile({
  short: { rate: 300, connections: 60, leaseMs: 3_000, beforeMs: 3_000, stallMs: 6_000, afterMs: 5_000 },
  full: { rate: 500, connections: 300, leaseMs: 5_000, beforeMs: 10_000, stallMs: 15_000, afterMs: 20_000 },
});
const COMMAND_TIMEOUT_MS = 1_000;
const WITHIN_DEADLINE_MS = COMMAND_TIMEOUT_MS + 2_000;

jest.setTimeout(byProfile({ short: 180_000, full: 300_000 }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('fault 7: the network to Redis stalls under load for one of two instances', () => {
  const proxies: TcpProxy[] = [];
  let fleet: FaultFleet | undefined;
  let load: LoadGenerator | undefined;
  let probe: JsonRpcWsClient | undefined;

  beforeAll(async () => {
    fleet = await startFaultFleet({
      instances: 2,
      redisCluster: true,
      env: { REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS), SESSION_LEASE_MS: String(profile.leaseMs) },
      instanceEnv: async (index, cluster): Promise<Record<string, string>> => {
        if (index !== 0 || !cluster) return {};
        for (const node of cluster.nodes) proxies.push(await TcpProxy.start('127.0.0.1', node.port));
        return {
          REDIS_CLUSTER_NODES: proxies.map((proxy) => `127.0.0.1:${proxy.port}`).join(','),
          REDIS_NAT_MAP: cluster.nodes.map((node, i) => `${node.address}=127.0.0.1:${proxies[i].port}`).join(','),
        };
      },
    });
  });
  afterAll(async () => {
    await probe?.closeQuietly();
    await load?.close();
    for (const proxy of proxies) await proxy.restore();
    await fleet?.close();
    for (const proxy of proxies) await proxy.close();
  });

  it('bounds session calls by the deadline, fences the stalled instance, and resumes after healing without loss', async () => {
    const [a, b] = fleet!.servers;
    const connections = runConnections('rs', profile.connections);
    const set = faultLoad({ wsUrls: [a.wsUrl, b.wsUrl], connections, sockets: 4, ratePerSecond: profile.rate });
    load = set.load;
    const { ledger, errors, pool } = set;
    await load.connect();
    probe = await JsonRpcWsClient.connect(a.wsUrl, { record: false });
    load.start();
    await sleep(profile.beforeMs);

    ledger.causeEverywhere();
    for (const proxy of proxies) proxy.stall('hold');
    const stalledAt = Date.now();

    const sessionCalls: { outcome: string; ms: number }[] = [];
    const addLatencies: number[] = [];
    const healthSeen = new Set<string>();
    let fencedAfterMs: number | undefined;
    while (Date.now() - stalledAt < profile.stallMs) {
      for (const [method, params] of [
        ['getLiveSession', { connectionId: connections[0] }],
        ['addLiveSession', { connectionId: `${connections[0]}-probe`, sessionId: 'probe' }],
      ] as const) {
        const started = Date.now();
        const outcome = await probe.call(method, params, 30_000).then(
          () => 'answered',
          (error: RpcCallError | RpcTransportError) => `${error.code}${error.retryable ? ' retryable' : ''}`,
        );
        sessionCalls.push({ outcome, ms: Date.now() - started });
      }
      const started = Date.now();
      await probe.call('addMessage', {
        connectionId: `${connections[0]}-probe-add`,
        recipientDids: ['did:example:probe'],
        payload: { at: started },
      });
      addLatencies.push(Date.now() - started);
      const response = await fetch(`${a.httpUrl}/health`);
      healthSeen.add(`${response.status} ${((await response.json()) as { status: string }).status}`);
      if (fencedAfterMs === undefined && (await metricValue(a.httpUrl, 'mpr_live_sessions_fenced')) > 0)
        fencedAfterMs = Date.now() - stalledAt;
      await sleep(200);
    }

    for (const proxy of proxies) await proxy.restore();
    const healedAt = Date.now();
    let healthyMs: number | undefined;
    while (healthyMs === undefined && Date.now() - healedAt < 30_000) {
      const states = await Promise.all(
        [a, b].map(async (server) => ((await (await fetch(`${server.httpUrl}/health`)).json()) as { status: string }).status),
      );
      const fenced = await metricValue(a.httpUrl, 'mpr_live_sessions_fenced');
      if (states.every((state) => state === 'ok') && fenced === 0) healthyMs = Date.now() - healedAt;
      else await sleep(50);
    }
    await sleep(profile.afterMs);
    await load.finish();
    await auditDelivery({ ledger, pool, connections, holders: load.holders, patienceMs: FAULTS_REDELIVERY_TIMEOUT_MS + 5_000 });

    const verdict = ledger.verdict();
    const recovery = ledger.recoveryAfter(healedAt);
    const timeouts = await metricValue(a.httpUrl, 'mpr_redis_command_timeouts_total{connection="commands"}');
    const refused = await metricValue(a.httpUrl, 'mpr_redis_commands_refused_total{connection="commands"}');
    const slowestSession = Math.max(...sessionCalls.map((call) => call.ms));
    reportFault(
      rowFromVerdict(
        7,
        `network to Redis Cluster stalled ${(profile.stallMs / 1000).toFixed(0)} s for 1 of 2 instances at ${profile.rate} msg/s (REDIS_COMMAND_TIMEOUT_MS=${COMMAND_TIMEOUT_MS}, SESSION_LEASE_MS=${profile.leaseMs})`,
        verdict,
        errors,
        `/health ok on both and sessions served again ${seconds(healthyMs)}; add ${seconds(recovery.addMs)}; live ${seconds(recovery.liveMs)} (after the network healed)`,
        `on the stalled instance: ${sessionCalls.length} session calls all ${[...new Set(sessionCalls.map((call) => call.outcome))].join('/')}, slowest ${slowestSession} ms; ` +
          `${addLatencies.length} adds answered, slowest ${Math.max(...addLatencies)} ms; /health ${[...healthSeen].join(', ')}; sessions fenced ${seconds(fencedAfterMs)} after the stall began; ` +
          `${timeouts} command timeouts, ${refused} refused for the in-flight bound; no restart`,
      ),
    );

    expect(new Set(sessionCalls.map((call) => call.outcome))).toEqual(new Set(['-32000 retryable']));
    expect(slowestSession).toBeLessThan(WITHIN_DEADLINE_MS);
    // Adds do not wait for Redis: were they waiting, none would be faster than the deadline.
    expect(Math.min(...addLatencies)).toBeLessThan(COMMAND_TIMEOUT_MS / 2);
    expect([...healthSeen].every((state) => state.startsWith('200 '))).toBe(true);
    expect(healthSeen.has('200 degraded')).toBe(true);
    expect(fencedAfterMs).toBeDefined();
    expect(fencedAfterMs!).toBeLessThan(profile.leaseMs + 3_000);
    expect(healthyMs).toBeDefined();
    expect(a.exited() || b.exited()).toBe(false);
    expect(recovery.addMs).toBeDefined();
    expect(recovery.liveMs).toBeDefined();
    await expectNoLossNoDuplicate(verdict, fleet!.databaseUrl);
    expect(verdict.acknowledged).toBeGreaterThan(((profile.beforeMs + profile.afterMs) / 1000) * profile.rate * MIN_LOAD_SHARE);
  });
});
