import { DataSource } from 'typeorm';
import { ConnectionRef } from '../../apps/server/src/config';
import { DatabaseExecutor, MessageRepository, NewMessage, runMigrations } from '../../apps/server/src/database';
import { MIGRATIONS } from '../../apps/server/src/database/migrations';
import { createTestDatabase, sql } from '@didcomm-mpr/test-kit';

/** Connection `connectionId` of `tenant` (the default tenant unless said otherwise). */
const ref = (connectionId: string, tenant = 'default'): ConnectionRef => ({ tenant, connectionId });

describe('MessageRepository against real PostgreSQL', () => {
  let executor: DatabaseExecutor;
  let repository: MessageRepository;
  let url: string;
  let drop: () => Promise<void>;
  let n = 0;
  const message = (connectionId: string, claimedBy?: number, tenant = 'default'): NewMessage => ({
    ref: ref(connectionId, tenant),
    id: `m-${++n}`,
    recipientDids: ['did:example:a', 'did:with "quotes" and \\ backslash'],
    payload: JSON.stringify({ n }),
    payloadBytes: 8,
    claimedBy,
    ttlMs: 3_600_000,
  });
  const unlimited = { maxMessages: 1e9, maxBytes: 1e12 };
  /** Inserts with no quota in the way; resolves with the inserted rows. */
  const insert = async (messages: NewMessage[]) => (await repository.insertMany(messages, 60_000, unlimited)).inserted;
  const states = async (connectionId: string, tenant = 'default') =>
    (
      await sql<{ id: string; state: number; claimed_by: string | null }>(
        url,
        'SELECT id, state, claimed_by FROM queued_message WHERE tenant = $2 AND connection_id = $1 ORDER BY seq',
        [connectionId, tenant],
      )
    ).map((row) => `${row.id}:${row.state}:${row.claimed_by ?? '-'}`);

  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase());
    expect(await runMigrations(url)).toEqual(
      expect.arrayContaining([
        'CreateQueuedMessage1763800000000',
        'AddClaimedInstance1763900000000',
        'RetentionAndQuotas1764000000000',
        'AddTenant1764200000000',
        'SweepOnlyExpiryIndex1764400000000',
        'TakeInIndexOrder1764500000000',
        'RemoveByKey1764600000000',
      ]),
    );
    expect(await runMigrations(url)).toEqual([]);
    executor = new DatabaseExecutor({ url, poolSize: 4, queryTimeoutMs: 10_000 });
    repository = new MessageRepository(executor, { instanceId: 'test-instance' });
  });
  afterAll(async () => {
    await executor?.close();
    await drop?.();
  });

  it('stores recipient DIDs with quotes and backslashes intact', async () => {
    const [inserted] = await insert([message('dids')]);
    const rows = await sql<{ recipient_dids: string[] }>(url, 'SELECT recipient_dids FROM queued_message WHERE id = $1', [inserted.id]);
    expect(rows[0].recipient_dids).toEqual(['did:example:a', 'did:with "quotes" and \\ backslash']);
    expect(await repository.countPending(ref('dids'), 'did:with "quotes" and \\ backslash')).toBe(1);
  });

  it('a new session releases older claims and takes, but keeps its own and newer ones', async () => {
    const c = 'new-session';
    await insert([message(c, 100), message(c, 200), message(c, 300), message(c)]);
    await repository.take({
      ref: ref(c),
      limit: 10,
      limitBytes: 1e9,
      frameBudgetBytes: 1e9,
      frameOverheadBytes: 0,
      deleteMessages: false,
      sendingTimeoutMs: 60_000,
      claimedBy: undefined,
    });
    expect(await states(c)).toEqual([`m-${n - 3}:1:100`, `m-${n - 2}:1:200`, `m-${n - 1}:1:300`, `m-${n}:1:-`]);
    expect(await repository.releaseForNewSession(ref(c), 200)).toBe(2);
    expect(await states(c)).toEqual([`m-${n - 3}:0:-`, `m-${n - 2}:1:200`, `m-${n - 1}:1:300`, `m-${n}:0:-`]);
  });

  it("an ended session's late release leaves its successor's claims alone", async () => {
    const c = 'late-release';
    // Session 100 ended; session 200 took over and was pushed a message before 100's release ran.
    await insert([message(c, 100), message(c, 200)]);
    await repository.take({
      ref: ref('other'),
      limit: 1,
      limitBytes: 1,
      frameBudgetBytes: 1,
      frameOverheadBytes: 0,
      deleteMessages: false,
      sendingTimeoutMs: 1,
      claimedBy: undefined,
    });
    expect(await repository.releaseForEndedSessions([{ ref: ref(c), token: 100 }])).toEqual([
      expect.objectContaining({ ref: ref(c), released: 1 }),
    ]);
    expect(await states(c)).toEqual([`m-${n - 1}:0:-`, `m-${n}:1:200`]);
  });

  it('claims only pending messages, once', async () => {
    const c = 'claim';
    const [a] = await insert([message(c)]);
    const request = (token: number) => [{ ref: ref(c), id: a.id, wantPayload: true, token }];
    const [first, second] = await Promise.all([repository.claim(request(7), 60_000), repository.claim(request(8), 60_000)]);
    expect(first.length + second.length).toBe(1);
    expect([...first, ...second][0].payload).toBe(JSON.stringify({ n: Number(a.id.slice(2)) }));
  });

  describe('retention', () => {
    const take = (connectionId: string) =>
      repository.take({
        ref: ref(connectionId),
        limit: 100,
        limitBytes: 1e9,
        frameBudgetBytes: 1e9,
        frameOverheadBytes: 0,
        deleteMessages: false,
        sendingTimeoutMs: 60_000,
        claimedBy: undefined,
      });

    it('never returns, counts or claims an expired message, and the sweeper deletes it', async () => {
      const c = 'ttl';
      const [short] = await insert([{ ...message(c), ttlMs: 1 }]);
      const [long] = await insert([message(c)]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await repository.countPending(ref(c))).toBe(1);
      expect(await repository.claim([{ ref: ref(c), id: short.id, wantPayload: false, token: 1 }], 60_000)).toEqual([]);
      expect((await repository.stats(ref(c))).pending).toBe(1);
      expect((await take(c)).map((row) => row.id)).toEqual([long.id]);
      const expired = await repository.deleteExpired(1000, 10, 0);
      expect(expired).toEqual(expect.arrayContaining([{ ref: ref(c), messages: 1 }]));
      expect(await sql(url, 'SELECT id FROM queued_message WHERE connection_id = $1', [c])).toEqual([{ id: long.id }]);
    });

    it('a sending message that expires is not returned to pending by the redelivery sweep', async () => {
      const c = 'ttl-sending';
      await insert([{ ...message(c, 5), ttlMs: 1 }]);
      await sql(url, `UPDATE queued_message SET sending_until = now() - interval '1 second' WHERE connection_id = $1`, [c]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect((await repository.releaseExpired(1000)).filter((row) => row.ref.connectionId === c)).toEqual([]);
    });

    it('deletes in bounded batches, and only one sweeper at a time holds the lock', async () => {
      const c = 'ttl-batches';
      await insert(Array.from({ length: 25 }, () => ({ ...message(c), ttlMs: 1 })));
      await new Promise((resolve) => setTimeout(resolve, 20));
      const other = new MessageRepository(executor, { instanceId: 'other-instance' });
      const [first, second] = await Promise.all([repository.deleteExpired(10, 100, 50), other.deleteExpired(10, 100, 50)]);
      // One of the two found the lock taken and did nothing; the other deleted all 25, 10 per statement.
      expect([first, second].filter((result) => result === undefined)).toHaveLength(1);
      expect((first ?? second)?.find((entry) => entry.ref.connectionId === c)?.messages).toBe(25);
      expect(await repository.countPending(ref(c))).toBe(0);
      // The lock was let go: the next sweep runs (and finds nothing).
      expect(await repository.deleteExpired(10, 100, 0)).toEqual([]);
    });
  });

  describe('quotas', () => {
    it('refuses the messages that would pass the message limit, in batch order, and stores nothing of them', async () => {
      const c = 'quota-count';
      await insert([message(c), message(c)]);
      const batch = [message(c), message(c), message(c), message('quota-other')];
      const outcome = await repository.insertMany(batch, 60_000, { maxMessages: 3, maxBytes: 1e9 });
      // Connections far from their limits are inserted first (fast path), the others after their count.
      expect(outcome.inserted.map((row) => row.id)).toEqual([batch[3].id, batch[0].id]);
      expect(outcome.refused).toEqual([
        { ref: ref(c), id: batch[1].id, messagesAfter: 4, bytesAfter: 32 },
        { ref: ref(c), id: batch[2].id, messagesAfter: 5, bytesAfter: 40 },
      ]);
      expect(await repository.countPending(ref(c))).toBe(3);
    });

    it('refuses by bytes, does not count expired messages, and lets a retry of a stored id succeed', async () => {
      const c = 'quota-bytes';
      const [stored] = await insert([{ ...message(c), payloadBytes: 60 }]);
      await insert([{ ...message(c), payloadBytes: 1000, ttlMs: 1 }]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      const big = { ...message(c), payloadBytes: 41 };
      const fits = { ...message(c), payloadBytes: 40 };
      expect((await repository.insertMany([big], 60_000, { maxMessages: 100, maxBytes: 100 })).refused.map((row) => row.id)).toEqual([
        big.id,
      ]);
      expect((await repository.insertMany([fits], 60_000, { maxMessages: 100, maxBytes: 100 })).inserted.map((row) => row.id)).toEqual([
        fits.id,
      ]);
      // The queue is full now; the same id again is a retry of a stored add, not a new message: neither inserted nor refused.
      const retry = await repository.insertMany([{ ...message(c), id: stored.id }], 60_000, { maxMessages: 2, maxBytes: 100 });
      expect(retry).toEqual({ inserted: [], refused: [] });
    });

    it('keeps the limit exactly across successive batches (one instance commits one batch at a time)', async () => {
      const c = 'quota-concurrent';
      const quota = { maxMessages: 50, maxBytes: 1e9 };
      let inserted = 0;
      for (let i = 0; i < 10; i++)
        inserted += (
          await repository.insertMany(
            Array.from({ length: 8 }, () => message(c)),
            60_000,
            quota,
          )
        ).inserted.length;
      expect(inserted).toBe(50);
      expect(await repository.countPending(ref(c))).toBe(50);
    });
  });

  it('keeps queue_usage an upper bound that removals leave alone and a recount resets near the limit', async () => {
    const c = 'usage';
    const quota = { maxMessages: 5, maxBytes: 1e9 };
    const bound = async () =>
      (await sql<{ messages: number }>(url, 'SELECT messages FROM queue_usage WHERE connection_id = $1', [c]))[0]?.messages;
    const add = async (count: number) =>
      (
        await repository.insertMany(
          Array.from({ length: count }, () => message(c)),
          60_000,
          quota,
        )
      ).inserted;
    const first = await add(5);
    expect(await bound()).toBe(5);
    await repository.remove(
      ref(c),
      first.map((row) => row.id),
    );
    expect(await bound()).toBe(5); // removals do not touch it
    // Bound 5 + 3 passes the limit: the live messages (none) are counted, and the bound restarts from there.
    expect(await add(3)).toHaveLength(3);
    expect(await bound()).toBe(3);
    await repository.take({
      ref: ref(c),
      limit: 2,
      limitBytes: 1e9,
      frameBudgetBytes: 1e9,
      frameOverheadBytes: 0,
      deleteMessages: true,
      sendingTimeoutMs: 60_000,
      claimedBy: undefined,
    });
    expect(await add(4)).toHaveLength(4); // 1 left + 4 = 5
    expect(await bound()).toBe(5);
    expect((await repository.insertMany([message(c)], 60_000, quota)).refused).toHaveLength(1);
    expect(await repository.countPending(ref(c))).toBe(5);
  });

  it('reports per-connection stats and fleet totals without expired messages', async () => {
    const c = 'stats';
    expect(await repository.stats(ref(c))).toEqual({ pending: 0, sending: 0, bytes: 0, oldestReceivedAt: null });
    const [first] = await insert([
      { ...message(c), payloadBytes: 100 },
      { ...message(c, 9), payloadBytes: 50 },
      { ...message(c), payloadBytes: 7, ttlMs: 1 },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const stats = await repository.stats(ref(c));
    expect(stats).toEqual({ pending: 1, sending: 1, bytes: 150, oldestReceivedAt: first.receivedAt });
    const totals = await repository.totals();
    expect(totals.bytes).toBeGreaterThanOrEqual(150);
  });

  describe('tenants', () => {
    const take = (r: ConnectionRef, deleteMessages = false) =>
      repository.take({
        ref: r,
        limit: 100,
        limitBytes: 1e9,
        frameBudgetBytes: 1e9,
        frameOverheadBytes: 0,
        deleteMessages,
        sendingTimeoutMs: 60_000,
        claimedBy: undefined,
      });

    it('keeps the same connectionId (and message id) of two tenants apart in every statement', async () => {
      const c = 'shared';
      const a = ref(c, 'a');
      const b = ref(c, 'b');
      const inA = { ...message(c, undefined, 'a'), id: 'same-id' };
      const inB = { ...message(c, undefined, 'b'), id: 'same-id' };
      expect((await insert([inA, inB])).map((row) => row.ref)).toEqual([a, b]);
      await insert([message(c, undefined, 'b'), message(c, 7, 'b')]);
      expect(await repository.countPending(a)).toBe(1);
      expect(await repository.countPending(b)).toBe(2);
      expect(await repository.stats(a)).toMatchObject({ pending: 1, sending: 0 });
      expect(await repository.stats(b)).toMatchObject({ pending: 2, sending: 1 });
      // A take, a claim, a release and a removal by id in tenant a leave tenant b's rows alone.
      expect((await take(a)).map((row) => [row.ref, row.id])).toEqual([[a, 'same-id']]);
      expect(await states(c, 'b')).toEqual(['same-id:0:-', `m-${n - 1}:0:-`, `m-${n}:1:7`]);
      expect(await repository.releaseForEndedSessions([{ ref: a, token: 7 }])).toEqual([expect.objectContaining({ ref: a, released: 1 })]);
      expect(await states(c, 'b')).toEqual(['same-id:0:-', `m-${n - 1}:0:-`, `m-${n}:1:7`]);
      expect(await repository.claim([{ ref: a, id: `m-${n - 1}`, wantPayload: false, token: 9 }], 60_000)).toEqual([]);
      expect(await repository.release(a, [`m-${n}`])).toBe(0);
      expect(await repository.remove(a, ['same-id'])).toBe(1);
      expect(await repository.countPending(b)).toBe(2);
      expect(await repository.releaseForNewSession(b, 100)).toBe(1);
      // removeAll in tenant b leaves tenant a's (now empty) queue and others' rows alone.
      await insert([message(c, undefined, 'a')]);
      expect(await repository.removeAll(b)).toBe(3);
      expect(await repository.countPending(a)).toBe(1);
      expect((await take(a, true)).map((row) => row.ref)).toEqual([a]);
    });

    it('keeps quotas per tenant and connection', async () => {
      const c = 'quota-tenant';
      const quota = { maxMessages: 2, maxBytes: 1e9 };
      const add = (tenant: string, count: number) =>
        repository.insertMany(
          Array.from({ length: count }, () => message(c, undefined, tenant)),
          60_000,
          quota,
        );
      expect((await add('a', 2)).inserted).toHaveLength(2);
      expect((await add('b', 2)).inserted).toHaveLength(2);
      const refused = await add('a', 1);
      expect(refused.refused.map((row) => row.ref)).toEqual([ref(c, 'a')]);
      expect(await sql(url, 'SELECT tenant, messages FROM queue_usage WHERE connection_id = $1 ORDER BY tenant', [c])).toEqual([
        { tenant: 'a', messages: 2 },
        { tenant: 'b', messages: 2 },
      ]);
    });

    it('refuses a row without a tenant: no statement can fall into the default tenant by omission', async () => {
      await expect(
        sql(
          url,
          `INSERT INTO queued_message (connection_id, id, recipient_dids, payload, payload_bytes, expires_at) VALUES ('x', 'y', '{}', '{}', 2, now())`,
        ),
      ).rejects.toThrow(/null value in column "tenant"/);
    });

    it('the migration puts rows stored before tenants into the default tenant', async () => {
      const { url: oldUrl, drop: dropOld } = await createTestDatabase();
      try {
        const before = new DataSource({
          type: 'postgres',
          url: oldUrl,
          migrations: MIGRATIONS.slice(
            0,
            MIGRATIONS.findIndex((migration) => migration.name === 'AddTenant1764200000000'),
          ),
          logging: false,
        });
        await before.initialize();
        await before.runMigrations();
        await before.query(
          `INSERT INTO queued_message (connection_id, id, recipient_dids, payload, payload_bytes, expires_at) VALUES ('old', 'm1', '{}', '{}', 2, now() + interval '1 day')`,
        );
        await before.query(`INSERT INTO queue_usage (connection_id, messages, bytes) VALUES ('old', 1, 2)`);
        await before.query(`INSERT INTO push_token (connection_id, type, token, token_hash) VALUES ('old', 'fcm', 't', 'h')`);
        await before.destroy();
        expect(await runMigrations(oldUrl)).toEqual([
          'AddTenant1764200000000',
          'SweepOnlyExpiryIndex1764400000000',
          'TakeInIndexOrder1764500000000',
          'RemoveByKey1764600000000',
        ]);
        for (const table of ['queued_message', 'queue_usage', 'push_token']) {
          expect(await sql(oldUrl, `SELECT tenant, connection_id FROM ${table}`)).toEqual([{ tenant: 'default', connection_id: 'old' }]);
        }
        const old = new DatabaseExecutor({ url: oldUrl, poolSize: 2, queryTimeoutMs: 10_000 });
        try {
          const migrated = new MessageRepository(old, { instanceId: 'test-instance' });
          expect(await migrated.countPending(ref('old'))).toBe(1);
          expect(await migrated.countPending(ref('old', 'a'))).toBe(0);
        } finally {
          await old.close();
        }
      } finally {
        await dropOld();
      }
    });
  });
});
