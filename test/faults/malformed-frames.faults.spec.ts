import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import { DeliveryLedger } from './support/delivery-ledger';
import { expectNoLossNoDuplicate } from './support/fault-assertions';
import { FaultFleet, startFaultFleet } from './support/fault-fleet';
import { reportFault, rowFromVerdict } from './support/fault-report';
import { byProfile, FAULTS_REDELIVERY_TIMEOUT_MS } from './support/faults-profile';
import { auditDelivery, ErrorTally, InstancePool, LoadGenerator } from './support/load-generator';

/**
 * Fault 4: random and malformed frames from 20 sockets while legitimate clients keep working. Each bad frame
 * must get the right JSON-RPC error, or, for protocol violations (a frame above MAX_FRAME_BYTES, invalid
 * UTF-8 in a text frame), the close of that socket alone; the legitimate clients must see no error at all.
 */

const profile = byProfile({
  short: { frames: 2_000, rate: 200, connections: 40 },
  full: { frames: 10_000, rate: 300, connections: 100 },
});
const BAD_SOCKETS = 20;
// Small limits so that oversized frames and payloads stay cheap to send.
const MAX_PAYLOAD_BYTES = 64 * 1024;
const MAX_FRAME_BYTES = MAX_PAYLOAD_BYTES + 64 * 1024;

jest.setTimeout(byProfile({ short: 150_000, full: 300_000 }));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A seeded generator, so a failing frame sequence can be replayed. */
function prng(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(items: T[]): T => items[Math.floor(next() * items.length)] };
}

type Expectation =
  | { kind: 'error'; code: number; id?: string | number | null }
  | { kind: 'batch-errors'; count: number; code: number }
  | { kind: 'close'; code: number }
  /** A binary frame the server may read as text or ignore: answered with -32700 or not at all. */
  | { kind: 'maybe-parse-error' };

interface BadFrame {
  category: string;
  data: string | Buffer;
  binary: boolean;
  expect: Expectation;
}

function planFrame(rng: ReturnType<typeof prng>, serial: number): BadFrame {
  const id = `bad-${serial}`;
  const text = (category: string, data: string, expect: Expectation): BadFrame => ({ category, data, binary: false, expect });
  const r = rng.next();
  if (r < 0.2) {
    // Valid requests cut short, and noise that is not JSON at all.
    const whole = JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'addMessage',
      params: { connectionId: 'c', recipientDids: ['d'], payload: { x: rng.int(1e6) } },
    });
    const cut =
      rng.next() < 0.5
        ? whole.slice(0, 1 + rng.int(whole.length - 1))
        : `@${randomBytes(1 + rng.int(64))
            .toString('latin1')
            .replace(/[\ud800-\udfff]/g, '')}`;
    return text('not JSON', cut, { kind: 'error', code: -32700, id: null });
  }
  if (r < 0.3)
    return text('JSON, not a request', rng.pick(['42', '"text"', 'null', 'true', '[]', '{}']), { kind: 'error', code: -32600, id: null });
  if (r < 0.35) {
    const count = 1 + rng.int(5);
    return {
      category: 'batch of junk',
      data: JSON.stringify(Array.from({ length: count }, () => rng.pick<unknown>([1, 'x', null, {}]))),
      binary: false,
      expect: { kind: 'batch-errors', count, code: -32600 },
    };
  }
  if (r < 0.5) {
    const envelope = rng.pick<Record<string, unknown>>([
      { jsonrpc: '1.0', id, method: 'ping' },
      { jsonrpc: 2, id, method: 'ping' },
      { id, method: 'ping' },
      { jsonrpc: '2.0', id, method: 42 },
      { jsonrpc: '2.0', id },
      { jsonrpc: '2.0', id: 'i'.repeat(1025 + rng.int(100)), method: 'ping' },
    ]);
    return text('bad envelope', JSON.stringify(envelope), { kind: 'error', code: -32600 });
  }
  if (r < 0.62) {
    return text('unknown method', JSON.stringify({ jsonrpc: '2.0', id, method: rng.pick(['nope', 'addmessage', 'rpc.nope', '']) }), {
      kind: 'error',
      code: -32601,
      id,
    });
  }
  if (r < 0.88) {
    const [method, params] = rng.pick<[string, unknown]>([
      ['addMessage', {}],
      ['addMessage', { connectionId: 7, recipientDids: ['d'], payload: {} }],
      ['addMessage', { connectionId: 'c', recipientDids: [], payload: {} }],
      ['addMessage', { connectionId: 'c', recipientDids: ['d'], payload: 'text' }],
      ['addMessage', { connectionId: 'a\u0000b', recipientDids: ['d'], payload: {} }],
      ['takeFromQueue', { connectionId: 'c', limit: '3' }],
      ['takeFromQueue', { connectionId: 'c', deleteMessages: 'yes' }],
      ['removeMessages', { connectionId: 'c', messageIds: 'm' }],
      ['addLiveSession', { connectionId: 'c' }],
      ['getLiveSession', { connectionId: 'x'.repeat(600) }],
    ]);
    return text('invalid params', JSON.stringify({ jsonrpc: '2.0', id, method, params }), { kind: 'error', code: -32602, id });
  }
  if (r < 0.9) {
    const payload = { big: 'x'.repeat(MAX_PAYLOAD_BYTES + 1 + rng.int(1000)) };
    return text(
      'payload too large',
      JSON.stringify({ jsonrpc: '2.0', id, method: 'addMessage', params: { connectionId: 'c', recipientDids: ['d'], payload } }),
      {
        kind: 'error',
        code: -32001,
        id,
      },
    );
  }
  if (r < 0.97)
    return { category: 'binary garbage', data: randomBytes(1 + rng.int(200)), binary: true, expect: { kind: 'maybe-parse-error' } };
  if (r < 0.985) return text('frame above MAX_FRAME_BYTES', 'x'.repeat(MAX_FRAME_BYTES + 1 + rng.int(1000)), { kind: 'close', code: 1009 });
  return {
    category: 'invalid UTF-8 text frame',
    data: Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
    binary: false,
    expect: { kind: 'close', code: 1007 },
  };
}

function parsesAsJson(data: string | Buffer): boolean {
  try {
    JSON.parse(data.toString());
    return true;
  } catch {
    return false;
  }
}

/** A raw socket that reads the server's frames one at a time. */
class RawSocket {
  private readonly frames: unknown[] = [];
  private wake: (() => void) | undefined;
  closeCode: number | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      this.frames.push(JSON.parse(data.toString('utf8')));
      this.wake?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', (code) => {
      this.closeCode = code;
      this.wake?.();
    });
  }

  static connect(url: string): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.once('open', () => resolve(new RawSocket(socket)));
      socket.once('error', reject);
    });
  }

  /** The next frame from the server, or 'closed'. */
  async next(timeoutMs = 10_000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (this.frames.length === 0) {
      if (this.closeCode !== undefined) return 'closed';
      if (Date.now() > deadline) throw new Error('no frame from the server in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.frames.shift();
  }
}

interface ErrorFrame {
  jsonrpc?: string;
  id?: unknown;
  result?: unknown;
  error?: { code: number; data?: { retryable?: boolean } };
}

function checkError(frame: unknown, code: number, id?: string | number | null): string | undefined {
  const response = frame as ErrorFrame;
  if (!response || typeof response !== 'object' || Array.isArray(response))
    return `expected an error object, got ${JSON.stringify(frame).slice(0, 200)}`;
  if (response.jsonrpc !== '2.0' || response.error?.code !== code || response.error.data?.retryable !== false) {
    return `expected error ${code}, got ${JSON.stringify(frame).slice(0, 200)}`;
  }
  if (id !== undefined && response.id !== id) return `expected id ${JSON.stringify(id)}, got ${JSON.stringify(response.id)}`;
  return undefined;
}

describe('fault 4: random and malformed frames from 20 sockets', () => {
  let fleet: FaultFleet | undefined;
  let load: LoadGenerator | undefined;
  const raws: RawSocket[] = [];

  beforeAll(async () => {
    fleet = await startFaultFleet({
      instances: 1,
      redisCluster: false,
      env: { MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES), MAX_FRAME_BYTES: String(MAX_FRAME_BYTES) },
    });
  });
  afterAll(async () => {
    for (const raw of raws) raw.socket.terminate();
    await load?.close();
    await fleet?.close();
  });

  it('answers each bad frame correctly or closes only its socket, and the legitimate clients see no error', async () => {
    const server = fleet!.servers[0];
    const run = randomBytes(3).toString('hex');
    const connections = Array.from({ length: profile.connections }, (_, i) => `frames-${run}-${i}`);
    const ledger = new DeliveryLedger(FAULTS_REDELIVERY_TIMEOUT_MS);
    const errors = new ErrorTally();
    const pool = new InstancePool([server.wsUrl]);
    load = new LoadGenerator({
      ledger,
      errors,
      pool,
      connections,
      holderSockets: 2,
      senderSockets: 2,
      ratePerSecond: profile.rate,
      payloadBytes: 1024,
    });
    await load.connect();
    load.start();
    await sleep(1_000);

    const seed = 0xfa017 ^ Number.parseInt(run, 16);
    const rng = prng(seed);
    const wrong: string[] = [];
    const byCategory = new Map<string, number>();
    const closes = new Map<number, number>();
    let serial = 0;
    const attackStartedAt = Date.now();
    await Promise.all(
      Array.from({ length: BAD_SOCKETS }, async (_, socketIndex) => {
        let raw = await RawSocket.connect(server.wsUrl);
        raws.push(raw);
        for (let k = 0; k < profile.frames / BAD_SOCKETS; k++) {
          const frame = planFrame(rng, serial++);
          byCategory.set(frame.category, (byCategory.get(frame.category) ?? 0) + 1);
          raw.socket.send(frame.data, { binary: frame.binary });
          const where = `socket ${socketIndex}, frame ${k} (${frame.category}, seed ${seed})`;
          const expect = frame.expect;
          if (expect.kind === 'maybe-parse-error') {
            // Frames are handled in order: once this pong is back, any answer to the binary frame came first.
            raw.socket.send(JSON.stringify({ jsonrpc: '2.0', id: `after-${k}`, method: 'ping' }));
            let reply = await raw.next();
            if (!(reply as ErrorFrame).result) {
              // Random bytes are now and then JSON after all (a lone digit): a value that is not a request, -32600.
              const problem = checkError(reply, parsesAsJson(frame.data) ? -32600 : -32700, null);
              if (problem) wrong.push(`${where}: ${problem}`);
              reply = await raw.next();
            }
            if ((reply as ErrorFrame).result !== 'pong')
              wrong.push(`${where}: expected the pong, got ${JSON.stringify(reply).slice(0, 200)}`);
            continue;
          }
          const reply = await raw.next();
          if (expect.kind === 'close') {
            if (reply !== 'closed' || raw.closeCode !== expect.code)
              wrong.push(
                `${where}: expected close ${expect.code}, got ${reply === 'closed' ? `close ${raw.closeCode}` : JSON.stringify(reply).slice(0, 200)}`,
              );
            closes.set(raw.closeCode ?? 0, (closes.get(raw.closeCode ?? 0) ?? 0) + 1);
            // The offender comes back, as a misbehaving client would.
            raw = await RawSocket.connect(server.wsUrl);
            raws.push(raw);
            continue;
          }
          if (reply === 'closed') {
            wrong.push(`${where}: socket closed (${raw.closeCode}) instead of an answer`);
            raw = await RawSocket.connect(server.wsUrl);
            raws.push(raw);
            continue;
          }
          if (expect.kind === 'batch-errors') {
            if (!Array.isArray(reply) || reply.length !== expect.count)
              wrong.push(`${where}: expected ${expect.count} errors in a batch, got ${JSON.stringify(reply).slice(0, 200)}`);
            else
              for (const entry of reply) {
                const problem = checkError(entry, expect.code);
                if (problem) wrong.push(`${where}: ${problem}`);
              }
            continue;
          }
          const problem = checkError(reply, expect.code, expect.id);
          if (problem) wrong.push(`${where}: ${problem}`);
        }
      }),
    );
    const attackMs = Date.now() - attackStartedAt;
    await sleep(1_000);
    await load.finish();
    await auditDelivery({ ledger, pool, connections, holders: load.holders, patienceMs: FAULTS_REDELIVERY_TIMEOUT_MS + 5_000 });

    const verdict = ledger.verdict();
    const health = await fetch(`${server.httpUrl}/health`);
    reportFault(
      rowFromVerdict(
        4,
        `${serial.toLocaleString('en-US')} random/malformed frames from ${BAD_SOCKETS} sockets in ${(attackMs / 1000).toFixed(1)} s, legitimate load ${profile.rate} msg/s`,
        verdict,
        errors,
        'never interrupted',
        `bad frames answered wrongly: ${wrong.length}; offending sockets closed: ${[...closes.entries()].map(([code, n]) => `${n} × ${code}`).join(', ') || 'none'}; mix: ${[...byCategory.entries()].map(([c, n]) => `${c} ${n}`).join(', ')}`,
      ),
    );

    expect(wrong.slice(0, 20)).toEqual([]);
    expect(errors.describe()).toBe('0');
    expect(health.status).toBe(200);
    expect(server.exited()).toBe(false);
    await expectNoLossNoDuplicate(verdict, fleet!.databaseUrl);
    expect(verdict.acknowledged).toBeGreaterThan(0);
  });
});
