import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { bearer, FleetRedis, JsonRpcWsClient, REDIS_TOPOLOGIES, TestToken, testToken, writeTokensFile } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

jest.setTimeout(60_000);

/**
 * Two instances on one PostgreSQL and one Redis (a node, or a 3-master cluster), one tokens file: the same
 * connectionId under tenants a and b is two sessions fleet-wide, two channels, two queues, whichever instance each
 * call reaches.
 */
describe.each(REDIS_TOPOLOGIES)('tenants across two instances over %s', (_name, startRedis) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mpr-tenant-fleet-'));
  const file = path.join(dir, 'tokens.json');
  const a = testToken('mediator-a', 'a');
  const b = testToken('mediator-b', 'b');
  let redis: FleetRedis;
  let one: TestServer;
  let two: TestServer;
  const clients: JsonRpcWsClient[] = [];
  const connect = async (server: TestServer, token: TestToken) => {
    const client = await JsonRpcWsClient.connect(server.wsUrl, { headers: bearer(token) });
    clients.push(client);
    return client;
  };
  const add = (client: JsonRpcWsClient, connectionId: string, payload: Record<string, unknown>) =>
    client.call<{ messageId: string }>('addMessage', { connectionId, recipientDids: ['did:x'], payload });

  beforeAll(async () => {
    writeTokensFile(file, [a, b]);
    redis = await startRedis();
    one = await startTestServer({ ...redis.env, AUTH_TOKENS_FILE: file });
    two = await startTestServer({ ...redis.env, AUTH_TOKENS_FILE: file }, one.databaseUrl);
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.closeQuietly()));
    await two?.stop();
    await one?.close();
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('delivers each tenant’s messages to its own holder only, across instances', async () => {
    const c = `shared-${Date.now()}`;
    const holderA = await connect(one, a);
    const holderB = await connect(two, b);
    const senderA = await connect(two, a);
    const senderB = await connect(one, b);
    expect(await holderA.call('addLiveSession', { connectionId: c, sessionId: 'sa' })).toBe(true);
    // Seen from the other instance, in tenant b nobody holds c; a reclaim there succeeds and ends nothing of tenant a.
    expect(await senderB.call('getLiveSession', { connectionId: c })).toBe(false);
    expect(await senderA.call('getLiveSession', { connectionId: c })).toBe(true);
    expect(await holderB.call('addLiveSession', { connectionId: c, sessionId: 'sb', reclaim: true })).toBe(true);
    expect(await senderA.call('getLiveSession', { connectionId: c })).toBe(true);

    // Added on the instance that does not hold the session: the publish reaches the tenant's own holder only.
    const { messageId: forA } = await add(senderA, c, { to: 'a' });
    const { messageId: forB } = await add(senderB, c, { to: 'b' });
    await holderA.waitFor(() => holderA.notifiedIds(c).includes(forA), 5_000, 'tenant a’s cross-instance notification');
    await holderB.waitFor(() => holderB.notifiedIds(c).includes(forB), 5_000, 'tenant b’s cross-instance notification');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(holderA.notifiedIds()).toEqual([forA]);
    expect(holderB.notifiedIds()).toEqual([forB]);
    expect(await senderA.call('getQueueStats', { connectionId: c })).toMatchObject({ pending: 0, sending: 1 });
    expect(await senderB.call('getQueueStats', { connectionId: c })).toMatchObject({ pending: 0, sending: 1 });

    // Tenant b's session ends on instance two: tenant a's session on instance one keeps receiving.
    expect(await senderB.call('removeLiveSession', { connectionId: c })).toBe(true);
    expect(await senderA.call('getLiveSession', { connectionId: c })).toBe(true);
    const { messageId: againA } = await add(senderA, c, { to: 'a', n: 2 });
    await holderA.waitFor(() => holderA.notifiedIds(c).includes(againA), 5_000, 'tenant a’s next notification');
    await add(senderB, c, { to: 'b', n: 2 });
    // b's in-flight message went back to pending with its session, and its new one waits with it.
    expect(await senderB.call('getAvailableMessageCount', { connectionId: c })).toBe(2);
    expect(holderB.notifiedIds()).toEqual([forB]);
    expect(await holderA.call('removeMessages', { connectionId: c, messageIds: [forA, againA] })).toBe(true);
    expect(await senderA.call('getQueueStats', { connectionId: c })).toMatchObject({ pending: 0, sending: 0 });
    expect(await senderB.call('getQueueStats', { connectionId: c })).toMatchObject({ pending: 2 });
  });
});
