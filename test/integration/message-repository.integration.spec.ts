import { DataSource } from 'typeorm';
import { createDataSource, runMigrationsLocked } from '../../apps/server/src/database/database.factory';
import { MessageRepository, NewMessage } from '../../apps/server/src/queue/message.repository';
import { createTestDatabase, sql } from '../support/test-database';

describe('MessageRepository against real PostgreSQL', () => {
  let dataSource: DataSource;
  let repository: MessageRepository;
  let url: string;
  let drop: () => Promise<void>;
  let n = 0;
  const message = (connectionId: string, claimedBy?: number): NewMessage => ({
    connectionId,
    id: `m-${++n}`,
    recipientDids: ['did:example:a', 'did:with "quotes" and \\ backslash'],
    payload: JSON.stringify({ n }),
    payloadBytes: 8,
    claimedBy,
  });
  const states = async (connectionId: string) =>
    (await sql<{ id: string; state: number; claimed_by: string | null }>(url, 'SELECT id, state, claimed_by FROM queued_message WHERE connection_id = $1 ORDER BY seq', [connectionId])).map(
      (row) => `${row.id}:${row.state}:${row.claimed_by ?? '-'}`,
    );

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase());
    dataSource = createDataSource({ url, poolSize: 4 });
    await dataSource.initialize();
    expect(await runMigrationsLocked(dataSource)).toEqual(['CreateQueuedMessage1763800000000', 'AddClaimedInstance1763900000000']);
    expect(await runMigrationsLocked(dataSource)).toEqual([]);
    repository = new MessageRepository(dataSource, { instanceId: 'test-instance' });
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await drop?.();
  });

  it('stores recipient DIDs with quotes and backslashes intact', async () => {
    const [inserted] = await repository.insertMany([message('dids')], 60_000);
    const rows = await sql<{ recipient_dids: string[] }>(url, 'SELECT recipient_dids FROM queued_message WHERE id = $1', [inserted.id]);
    expect(rows[0].recipient_dids).toEqual(['did:example:a', 'did:with "quotes" and \\ backslash']);
    expect(await repository.countPending('dids', 'did:with "quotes" and \\ backslash')).toBe(1);
  });

  it('a new session releases older claims and takes, but keeps its own and newer ones', async () => {
    const c = 'new-session';
    await repository.insertMany([message(c, 100), message(c, 200), message(c, 300), message(c)], 60_000);
    await repository.take({ connectionId: c, limit: 10, limitBytes: 1e9, frameBudgetBytes: 1e9, frameOverheadBytes: 0, deleteMessages: false, sendingTimeoutMs: 60_000, claimedBy: undefined });
    expect(await states(c)).toEqual([`m-${n - 3}:1:100`, `m-${n - 2}:1:200`, `m-${n - 1}:1:300`, `m-${n}:1:-`]);
    expect(await repository.releaseForNewSession(c, 200)).toBe(2);
    expect(await states(c)).toEqual([`m-${n - 3}:0:-`, `m-${n - 2}:1:200`, `m-${n - 1}:1:300`, `m-${n}:0:-`]);
  });

  it("an ended session's late release leaves its successor's claims alone", async () => {
    const c = 'late-release';
    // Session 100 ended; session 200 took over and was pushed a message before 100's release ran.
    await repository.insertMany([message(c, 100), message(c, 200)], 60_000);
    await repository.take({ connectionId: 'other', limit: 1, limitBytes: 1, frameBudgetBytes: 1, frameOverheadBytes: 0, deleteMessages: false, sendingTimeoutMs: 1, claimedBy: undefined });
    expect(await repository.releaseForEndedSessions([{ connectionId: c, token: 100 }])).toBe(1);
    expect(await states(c)).toEqual([`m-${n - 1}:0:-`, `m-${n}:1:200`]);
  });

  it('claims only pending messages, once', async () => {
    const c = 'claim';
    const [a] = await repository.insertMany([message(c)], 60_000);
    const request = (token: number) => [{ connectionId: c, id: a.id, wantPayload: true, token }];
    const [first, second] = await Promise.all([repository.claim(request(7), 60_000), repository.claim(request(8), 60_000)]);
    expect(first.length + second.length).toBe(1);
    expect([...first, ...second][0].payload).toBe(JSON.stringify({ n: Number(a.id.slice(2)) }));
  });
});
