import { chmodSync, mkdtempSync, promises as fs, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { WebSocket } from 'ws';
import { createTestDatabase, JsonRpcMessage, JsonRpcWsClient, ServerProcess, sql, tail } from '@didcomm-mpr/test-kit';

/**
 * The server as a real process (apps/server/src/main.ts): durability across `kill -9`, the embedded
 * PostgreSQL default (including recovery from its orphan), graceful SIGTERM, and config validation at boot.
 */

interface Queued {
  id: string;
  receivedAt: string;
  encryptedMessage: Record<string, unknown>;
}

const databases: { drop: () => Promise<void> }[] = [];
const tempDirs: string[] = [];

async function freshDatabase(): Promise<string> {
  const database = await createTestDatabase();
  databases.push(database);
  return database.url;
}

function freshDataDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mpr-process-e2e-'));
  // mkdtemp makes it 0700; as root, the embedded PostgreSQL runs as the unprivileged `postgres` user.
  chmodSync(dir, 0o755);
  tempDirs.push(dir);
  return dir;
}

/** Pids of PostgreSQL processes working in `dataDir`: by command line (postmaster's -D) or working directory (all of them). */
function postgresProcessesIn(dataDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline) continue; // zombie or kernel thread
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${entry}/cwd`);
      } catch {
        // gone meanwhile, or not ours to read
      }
      if (/postgres/.test(cmdline) && (cmdline.includes(dataDir) || cwd === dataDir || cwd.startsWith(`${dataDir}/`)))
        pids.push(Number(entry));
    } catch {
      // the process exited while we looked
    }
  }
  return pids;
}

/** Test cleanup for the embedded case: PostgreSQL processes left in our temp data dirs (we started them). */
async function killPostgresIn(dataDir: string): Promise<void> {
  for (const pid of postgresProcessesIn(dataDir)) {
    try {
      process.kill(pid, 'SIGQUIT');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 5_000;
  while (postgresProcessesIn(dataDir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const pid of postgresProcessesIn(dataDir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function takeAll(client: JsonRpcWsClient, connectionId: string): Promise<Queued[]> {
  const all: Queued[] = [];
  for (;;) {
    const batch = await client.call<Queued[]>('takeFromQueue', { connectionId });
    if (batch.length === 0) return all;
    all.push(...batch);
  }
}

afterAll(async () => {
  await ServerProcess.stopAll();
  for (const dir of tempDirs) {
    await killPostgresIn(dir);
    rmSync(dir, { recursive: true, force: true });
  }
  await Promise.all(databases.map((database) => database.drop().catch(() => undefined)));
}, 60_000);

describe('the server process', () => {
  it('keeps every acknowledged addMessage across a kill -9 right after the last acknowledgement', async () => {
    const databaseUrl = await freshDatabase();
    const first = await ServerProcess.start({ env: { DATABASE_URL: databaseUrl } });
    const clients = await Promise.all(Array.from({ length: 4 }, () => JsonRpcWsClient.connect(first.wsUrl)));
    const connectionIds = clients.map((_, i) => `durable-${i}-${Date.now()}`);
    const expected = new Map<string, { connectionId: string; payload: Record<string, unknown> }>();
    const total = 200;
    let acknowledged = 0;
    // All 200 in flight at once (50 per socket), so acknowledgements come from grouped commits too.
    const calls = Array.from({ length: total }, async (_, i) => {
      const socket = i % clients.length;
      const connectionId = connectionIds[socket];
      const payload = {
        i,
        protected: `p-${i}`,
        ciphertext: 'c'.repeat(i * 7),
        tag: 'ü€😀',
        nested: { list: [i, null, true, { deep: `v${i}` }] },
      };
      const response = await clients[socket].request('addMessage', { connectionId, recipientDids: [`did:example:${socket}`], payload });
      if (response.error) throw new Error(`addMessage ${i} failed: ${JSON.stringify(response.error)}`);
      const { messageId } = response.result as { messageId: string };
      expected.set(`${connectionId}/${messageId}`, { connectionId, payload });
      // kill -9 in the same tick as the last acknowledgement: nothing gets a chance to flush afterwards.
      if (++acknowledged === total) first.kill('SIGKILL');
    });
    await Promise.all(calls);
    expect(await first.waitForExit(10_000)).toEqual({ code: null, signal: 'SIGKILL' });
    expect(expected.size).toBe(total);
    await Promise.all(clients.map((client) => client.close()));

    const second = await ServerProcess.start({ env: { DATABASE_URL: databaseUrl } });
    const reader = await JsonRpcWsClient.connect(second.wsUrl);
    try {
      const found = new Map<string, Record<string, unknown>>();
      for (const connectionId of connectionIds) {
        for (const message of await takeAll(reader, connectionId)) found.set(`${connectionId}/${message.id}`, message.encryptedMessage);
      }
      expect([...found.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [key, { payload }] of expected) expect(found.get(key)).toEqual(payload);
    } finally {
      await reader.close();
      second.kill('SIGTERM');
      await second.waitForExit(15_000);
    }
  }, 90_000);

  it('runs an embedded PostgreSQL in DATA_DIR without DATABASE_URL, recovers its orphan after kill -9, and stops it on SIGTERM', async () => {
    const dataDir = freshDataDir();
    const env = { DATA_DIR: dataDir, DATABASE_URL: undefined };
    const first = await ServerProcess.start({ env });
    const payload = { embedded: true, ciphertext: 'x'.repeat(100), nested: { a: [1, 2, { b: 'ü' }] } };
    const connectionId = `embedded-${Date.now()}`;
    let messageId: string;
    const writer = await JsonRpcWsClient.connect(first.wsUrl);
    try {
      ({ messageId } = await writer.call<{ messageId: string }>('addMessage', { connectionId, recipientDids: ['did:example:a'], payload }));
    } finally {
      first.kill('SIGKILL');
      await first.waitForExit(10_000);
      await writer.close();
    }
    // The precondition of the recovery: the embedded PostgreSQL outlived its parent.
    const orphans = postgresProcessesIn(dataDir);
    expect(orphans.length).toBeGreaterThan(0);

    const second = await ServerProcess.start({ env });
    // The orphan was stopped (not merely bypassed): none of its processes are still there.
    expect(postgresProcessesIn(dataDir).filter((pid) => orphans.includes(pid))).toEqual([]);
    const reader = await JsonRpcWsClient.connect(second.wsUrl);
    try {
      const taken = await reader.call<Queued[]>('takeFromQueue', { connectionId });
      expect(taken.map((m) => ({ id: m.id, encryptedMessage: m.encryptedMessage }))).toEqual([
        { id: messageId, encryptedMessage: payload },
      ]);
    } finally {
      await reader.close();
    }
    const startedAt = Date.now();
    second.kill('SIGTERM');
    const exit = await second.waitForExit(15_000);
    expect({ exit, output: exit.code === 0 ? '' : tail(second.output()) }).toEqual({ exit: { code: 0, signal: null }, output: '' });
    expect(Date.now() - startedAt).toBeLessThan(15_000);
    expect(postgresProcessesIn(dataDir)).toEqual([]);
    await fs.access(path.join(dataDir, 'postgres', 'PG_VERSION'));
  }, 120_000);

  it('answers every in-flight call on SIGTERM (success that is stored, or retryable -32002 that stores nothing) and exits 0', async () => {
    const databaseUrl = await freshDatabase();
    const server = await ServerProcess.start({ env: { DATABASE_URL: databaseUrl } });
    const sockets = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<WebSocket>((resolve, reject) => {
            const socket = new WebSocket(server.wsUrl);
            socket.once('open', () => resolve(socket));
            socket.once('error', reject);
          }),
      ),
    );
    const connectionId = `graceful-${Date.now()}`;
    const responses = new Map<number, JsonRpcMessage>();
    const duplicates: number[] = [];
    const closed = sockets.map(
      (socket) =>
        new Promise<number>((resolve) => {
          socket.on('message', (data) => {
            const message = JSON.parse(data.toString()) as JsonRpcMessage;
            if (typeof message.id !== 'number') return;
            if (responses.has(message.id)) duplicates.push(message.id);
            responses.set(message.id, message);
          });
          socket.once('close', (code) => resolve(code));
        }),
    );
    const payloadOf = (id: number) => ({ id, ciphertext: `c-${id}`.repeat(20) });
    const frame = (id: number) =>
      JSON.stringify({
        jsonrpc: '2.0',
        id,
        method: 'addMessage',
        params: { connectionId, messageId: `m-${id}`, recipientDids: ['did:example:a'], payload: payloadOf(id) },
      });

    // Wave 1: 100 concurrent calls, all written to the server's socket before SIGTERM is sent.
    const firstWave = Array.from({ length: 100 }, (_, i) => i);
    await Promise.all(
      firstWave.map(
        (id) =>
          new Promise<void>((resolve, reject) =>
            sockets[id % sockets.length].send(frame(id), (error) => (error ? reject(error) : resolve())),
          ),
      ),
    );
    server.kill('SIGTERM');
    // Wave 2: calls keep coming during the shutdown until the server closes the sockets, so some arrive
    // while it drains (-32002 expected). Those crossing the server's close frame cannot be answered.
    const secondWave: number[] = [];
    await new Promise<void>((resolve) => {
      const send = () => {
        const open = sockets.filter((socket) => socket.readyState === WebSocket.OPEN);
        if (open.length === 0 || secondWave.length >= 5_000) return resolve();
        const id = 1_000 + secondWave.length;
        secondWave.push(id);
        open[id % open.length].send(frame(id));
        setTimeout(send, 1);
      };
      send();
    });

    const exit = await server.waitForExit(20_000);
    const closeCodes = await Promise.all(closed);
    expect({ exit, output: exit.code === 0 ? '' : tail(server.output()) }).toEqual({ exit: { code: 0, signal: null }, output: '' });
    expect(closeCodes).toEqual(sockets.map(() => 1001));
    expect(duplicates).toEqual([]);
    expect(firstWave.filter((id) => !responses.has(id))).toEqual([]);

    const rows = await sql<{ id: string; payload: string }>(
      databaseUrl,
      'SELECT id, payload FROM queued_message WHERE connection_id = $1',
      [connectionId],
    );
    const stored = new Map(rows.map((row) => [row.id, JSON.parse(row.payload) as unknown]));
    const refused: number[] = [];
    for (const [id, response] of responses) {
      if (response.error) {
        expect({ id, error: response.error }).toMatchObject({ id, error: { code: -32002, data: { retryable: true } } });
        // A rejected call changes nothing.
        expect({ id, stored: stored.has(`m-${id}`) }).toEqual({ id, stored: false });
        refused.push(id);
      } else {
        expect({ id, result: response.result }).toEqual({ id, result: { messageId: `m-${id}` } });
        expect({ id, payload: stored.get(`m-${id}`) }).toEqual({ id, payload: payloadOf(id) });
      }
    }
    // The shutting-down path was exercised (calls arrived after the gate closed and before the sockets did).
    expect(refused.length).toBeGreaterThan(0);
  }, 90_000);

  it('stops with a non-zero exit and a message naming the variable for each bad config value', async () => {
    const cases: [string, string][] = [
      ['PORT', 'abc'],
      ['MAX_TAKE_MESSAGES', '0'],
      ['LOG_LEVEL', 'loud'],
      ['DATABASE_URL', 'mysql://x'],
      ['REDELIVERY_TIMEOUT_MS', '1.5'],
      ['HEARTBEAT_INTERVAL_MS', '10s'],
    ];
    // In parallel: each is a cold start of the entry point. Everything else is valid, and nothing could
    // start a database if validation let the value through (unreachable DATABASE_URL, temp DATA_DIR).
    const results = await Promise.all(
      cases.map(async ([name, value]) => {
        const env = { DATABASE_URL: 'postgres://127.0.0.1:1/unreachable', DATA_DIR: freshDataDir(), [name]: value };
        const server = await ServerProcess.start({ env, waitForHealth: false });
        const exit = await server.waitForExit(45_000);
        const output = server.output();
        return {
          variable: `${name}=${value}`,
          failed: exit.code !== null && exit.code !== 0,
          namesVariable: output.includes(name),
          listened: output.includes('Listening on'),
          ...(exit.code === 0 || !output.includes(name) ? { output: tail(output, 10) } : {}),
        };
      }),
    );
    expect(results).toEqual(
      cases.map(([name, value]) => ({ variable: `${name}=${value}`, failed: true, namesVariable: true, listened: false })),
    );
  }, 60_000);
});
