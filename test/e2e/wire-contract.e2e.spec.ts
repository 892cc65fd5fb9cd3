import { JsonRpcMessage, JsonRpcWsClient } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * The wire contract of issue 2, checked frame by frame over a real WebSocket against the real server and a
 * real PostgreSQL: every method's result shape, every error code, notifications and batches per JSON-RPC 2.0.
 */

interface Queued {
  id: string;
  receivedAt: string;
  encryptedMessage: Record<string, unknown>;
}

type Response = JsonRpcMessage & { error?: { code: number; message: string; data?: { retryable: boolean; field?: string } } };

const PAYLOAD_LIMIT = 2048;
let seq = 0;
const unique = (prefix: string) => `${prefix}-${++seq}-${Date.now()}`;

/** Asserts a well-formed success response for `id` and returns its result. */
function expectResult(response: unknown, id: string | number | null): unknown {
  const r = response as Response;
  expect(r).toEqual(expect.objectContaining({ jsonrpc: '2.0', id }));
  expect(Object.keys(r).sort()).toEqual(['id', 'jsonrpc', 'result']);
  return r.result;
}

/** Asserts a well-formed error response: code, id, a message, and `data.retryable` as a boolean. */
function expectError(response: unknown, code: number, id: string | number | null): NonNullable<Response['error']> {
  const r = response as Response;
  expect(typeof r).toBe('object');
  expect(Array.isArray(r)).toBe(false);
  expect(Object.keys(r).sort()).toEqual(['error', 'id', 'jsonrpc']);
  expect(r.jsonrpc).toBe('2.0');
  expect(r.id).toBe(id);
  expect(r.error!.code).toBe(code);
  expect(typeof r.error!.message).toBe('string');
  expect(r.error!.message.length).toBeGreaterThan(0);
  expect(typeof r.error!.data?.retryable).toBe('boolean');
  return r.error!;
}

describe('wire contract (JSON-RPC 2.0 over WebSocket)', () => {
  let server: TestServer;
  let client: JsonRpcWsClient;

  /** Sends one raw frame and resolves with the next frame the server sends (parsed). */
  const exchange = (frame: unknown) => client.sendRaw(typeof frame === 'string' ? frame : JSON.stringify(frame));
  const request = (method: string, params?: unknown, id: string | number | null = unique('r')) =>
    exchange({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) }).then((response) => ({ response, id }));

  /**
   * Sends a frame that must get no response, then a ping request: the next frame must be that ping's pong, and
   * nothing else may have arrived.
   */
  async function expectNoResponse(frame: unknown): Promise<void> {
    const before = client.received.length;
    client.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
    const id = unique('after');
    const next = await exchange({ jsonrpc: '2.0', id, method: 'ping' });
    expect(next).toEqual({ jsonrpc: '2.0', id, result: 'pong' });
    expect(client.received.length).toBe(before);
  }

  const add = (connectionId: string, payload: Record<string, unknown> = { ciphertext: 'c' }, extra: Record<string, unknown> = {}) =>
    client.call<{ messageId: string }>('addMessage', { connectionId, recipientDids: ['did:example:bob'], payload, ...extra });
  const count = (connectionId: string) => client.call<number>('getAvailableMessageCount', { connectionId });

  beforeAll(async () => {
    server = await startTestServer({ MAX_PAYLOAD_BYTES: String(PAYLOAD_LIMIT) });
    client = await JsonRpcWsClient.connect(server.wsUrl);
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  afterEach(() => {
    // every test consumes what it provokes: a stray frame means a response nobody asked for
    expect(client.received).toEqual([]);
  });

  describe('results of each method', () => {
    it('addMessage answers {messageId} with a generated id, or the given one', async () => {
      const c = unique('conn');
      const { response, id } = await request('addMessage', { connectionId: c, recipientDids: ['did:a'], payload: { a: 1 } });
      const result = expectResult(response, id) as { messageId: string };
      expect(Object.keys(result)).toEqual(['messageId']);
      expect(typeof result.messageId).toBe('string');
      expect(result.messageId.length).toBeGreaterThan(0);
      const given = await request('addMessage', { connectionId: c, recipientDids: ['did:a'], payload: { a: 2 }, messageId: 'my-id' });
      expect(expectResult(given.response, given.id)).toEqual({ messageId: 'my-id' });
    });

    it('takeFromQueue answers an array of QueuedMessage, oldest first, and [] when empty', async () => {
      const c = unique('conn');
      const payloads = [{ protected: 'eyJ', iv: 'x', ciphertext: 'y', tag: 'z' }, { n: [1, 2, { deep: null }] }];
      const ids = [(await add(c, payloads[0])).messageId, (await add(c, payloads[1])).messageId];
      const { response, id } = await request('takeFromQueue', { connectionId: c });
      const taken = expectResult(response, id) as Queued[];
      expect(Array.isArray(taken)).toBe(true);
      expect(taken.map((m) => m.id)).toEqual(ids);
      for (const [i, m] of taken.entries()) {
        expect(Object.keys(m).sort()).toEqual(['encryptedMessage', 'id', 'receivedAt']);
        expect(typeof m.receivedAt).toBe('string');
        expect(new Date(m.receivedAt).toISOString()).toBe(m.receivedAt);
        expect(m.encryptedMessage).toEqual(payloads[i]);
      }
      const empty = await request('takeFromQueue', { connectionId: c });
      expect(expectResult(empty.response, empty.id)).toEqual([]);
    });

    it('getAvailableMessageCount answers an integer', async () => {
      const c = unique('conn');
      const zero = await request('getAvailableMessageCount', { connectionId: c });
      expect(expectResult(zero.response, zero.id)).toBe(0);
      await add(c);
      await add(c);
      const two = await request('getAvailableMessageCount', { connectionId: c });
      const result = expectResult(two.response, two.id);
      expect(Number.isInteger(result)).toBe(true);
      expect(result).toBe(2);
    });

    it('removeMessages and removeAllMessages answer true (also when nothing matched)', async () => {
      const c = unique('conn');
      const { messageId } = await add(c);
      await add(c);
      for (const [method, params] of [
        ['removeMessages', { connectionId: c, messageIds: [messageId] }],
        ['removeMessages', { connectionId: c, messageIds: ['no-such-id'] }],
        ['removeMessages', { connectionId: c, messageIds: [] }],
        ['removeAllMessages', { connectionId: c, recipientDid: 'did:nobody' }],
        ['removeAllMessages', { connectionId: c }],
        ['removeAllMessages', { connectionId: unique('empty') }],
      ] as const) {
        const { response, id } = await request(method, params);
        expect(expectResult(response, id)).toBe(true);
      }
      expect(await count(c)).toBe(0);
    });

    it('addLiveSession answers true, or false when reclaim is refused; getLiveSession answers a boolean', async () => {
      const c = unique('conn');
      const call = async (method: string, params: unknown) => {
        const { response, id } = await request(method, params);
        return expectResult(response, id);
      };
      expect(await call('getLiveSession', { connectionId: c })).toBe(false);
      expect(await call('addLiveSession', { connectionId: c, sessionId: 's1' })).toBe(true);
      expect(await call('getLiveSession', { connectionId: c })).toBe(true);
      // reclaim of a session held by another id is refused and changes nothing
      expect(await call('addLiveSession', { connectionId: c, sessionId: 's2', reclaim: true })).toBe(false);
      expect(await call('removeLiveSession', { connectionId: c, sessionId: 's2' })).toBe(false);
      expect(await call('getLiveSession', { connectionId: c })).toBe(true);
      // reclaim of the same id succeeds
      expect(await call('addLiveSession', { connectionId: c, sessionId: 's1', reclaim: true })).toBe(true);
      // without reclaim a newer session replaces the older one
      expect(await call('addLiveSession', { connectionId: c, sessionId: 's3', reclaim: false })).toBe(true);
      expect(await call('removeLiveSession', { connectionId: c, sessionId: 's1' })).toBe(false);
      expect(await call('getLiveSession', { connectionId: c })).toBe(true);
      // reclaim when no session is held succeeds
      const other = unique('conn');
      expect(await call('addLiveSession', { connectionId: other, sessionId: 'x', reclaim: true })).toBe(true);
      expect(await call('removeLiveSession', { connectionId: other })).toBe(true);
    });

    it('removeLiveSession answers true when it removed a session, false otherwise (including a sessionId mismatch)', async () => {
      const c = unique('conn');
      const call = async (params: unknown) => {
        const { response, id } = await request('removeLiveSession', params);
        return expectResult(response, id);
      };
      expect(await call({ connectionId: c })).toBe(false);
      await client.call('addLiveSession', { connectionId: c, sessionId: 'held' });
      expect(await call({ connectionId: c, sessionId: 'other' })).toBe(false);
      expect(await client.call('getLiveSession', { connectionId: c })).toBe(true);
      expect(await call({ connectionId: c, sessionId: 'held' })).toBe(true);
      expect(await client.call('getLiveSession', { connectionId: c })).toBe(false);
      expect(await call({ connectionId: c, sessionId: 'held' })).toBe(false);
      await client.call('addLiveSession', { connectionId: c, sessionId: 'again' });
      expect(await call({ connectionId: c })).toBe(true);
      expect(await call({ connectionId: c })).toBe(false);
    });

    it('ping answers "pong", with or without params', async () => {
      for (const frame of [
        { jsonrpc: '2.0', id: 'p1', method: 'ping' },
        { jsonrpc: '2.0', id: 'p2', method: 'ping', params: {} },
        { jsonrpc: '2.0', id: 'p3', method: 'ping', params: [] },
      ]) {
        expect(expectResult(await exchange(frame), frame.id)).toBe('pong');
      }
    });

    it.each(['rpc.on', 'rpc.off'])('%s ["messagesReceived"] answers {"messagesReceived":"ok"}', async (method) => {
      const { response, id } = await request(method, ['messagesReceived']);
      expect(expectResult(response, id)).toEqual({ messagesReceived: 'ok' });
    });
  });

  describe('request ids', () => {
    it.each<[string, string | number]>([
      ['a string', 'abc'],
      ['an empty string', ''],
      ['a unicode string', 'ünï-😀-"q"\\'],
      ['zero', 0],
      ['a negative number', -17],
      ['a fraction', 1.5],
      ['a large integer', Number.MAX_SAFE_INTEGER],
      ['a number in exponent form', 1e21],
    ])('echoes %s', async (_name, id) => {
      expect(expectResult(await exchange({ jsonrpc: '2.0', id, method: 'ping' }), id)).toBe('pong');
      const error = await exchange({ jsonrpc: '2.0', id, method: 'noSuchMethod' });
      expectError(error, -32601, id);
    });

    it('answers a request whose id is null (it is a request, not a notification) with id null', async () => {
      expect(expectResult(await exchange({ jsonrpc: '2.0', id: null, method: 'ping' }), null)).toBe('pong');
    });
  });

  describe('-32700 parse error', () => {
    it.each([
      ['truncated JSON', '{"jsonrpc":"2.0","id":1,"method":"ping"'],
      ['garbage', 'this is not json'],
      ['an empty frame', ''],
      ['whitespace', '   \n\t '],
      ['single quotes', "{'jsonrpc':'2.0','id':1,'method':'ping'}"],
      ['a trailing comma', '{"jsonrpc":"2.0","id":1,"method":"ping",}'],
      ['a truncated batch', '[{"jsonrpc":"2.0","method":"ping","id":"1"},{"jsonrpc":"2.0","method"'],
      ['two JSON texts in one frame', '{"jsonrpc":"2.0","id":1,"method":"ping"}{"jsonrpc":"2.0","id":2,"method":"ping"}'],
    ])('answers %s with one parse error with id null', async (_name, frame) => {
      const error = expectError(await exchange(frame), -32700, null);
      expect(error.data!.retryable).toBe(false);
    });
  });

  describe('-32600 invalid request', () => {
    it.each<[string, unknown, string | null]>([
      ['a wrong jsonrpc version', { jsonrpc: '1.0', id: 'v1', method: 'ping' }, 'v1'],
      ['a numeric jsonrpc', { jsonrpc: 2.0, id: 'v2', method: 'ping' }, 'v2'],
      ['no jsonrpc member', { id: 'v3', method: 'ping' }, 'v3'],
      ['a numeric method', { jsonrpc: '2.0', id: 'm1', method: 42 }, 'm1'],
      ['no method', { jsonrpc: '2.0', id: 'm2' }, 'm2'],
      ['a null method', { jsonrpc: '2.0', id: 'm3', method: null }, 'm3'],
      ['an object method', { jsonrpc: '2.0', id: 'm4', method: { name: 'ping' } }, 'm4'],
      ['string params', { jsonrpc: '2.0', id: 'p1', method: 'ping', params: 'x' }, 'p1'],
      ['numeric params', { jsonrpc: '2.0', id: 'p2', method: 'getLiveSession', params: 42 }, 'p2'],
      ['boolean params', { jsonrpc: '2.0', id: 'p3', method: 'getLiveSession', params: true }, 'p3'],
      ['a response sent as a request', { jsonrpc: '2.0', id: 'r1', result: 'pong' }, 'r1'],
    ])('answers %s', async (_name, frame, id) => {
      const response = (await exchange(frame)) as Response;
      // the specification allows the id to be null when the request is invalid; echoing a readable id helps clients
      expect([id, null]).toContain(response.id);
      expectError(response, -32600, response.id ?? null);
    });

    it.each<[string, unknown]>([
      ['an object id', { jsonrpc: '2.0', id: { a: 1 }, method: 'ping' }],
      ['an array id', { jsonrpc: '2.0', id: [1], method: 'ping' }],
      ['a boolean id', { jsonrpc: '2.0', id: true, method: 'ping' }],
    ])('answers %s with id null', async (_name, frame) => {
      expectError(await exchange(frame), -32600, null);
    });

    it.each([
      ['a bare number', '42'],
      ['a bare string', '"ping"'],
      ['null', 'null'],
      ['true', 'true'],
    ])('answers %s frame with one invalid-request error with id null', async (_name, frame) => {
      expectError(await exchange(frame), -32600, null);
    });

    it('treats "params": null as absent (what rpc-websockets clients send for a call without params)', async () => {
      expect(expectResult(await exchange({ jsonrpc: '2.0', id: 'null-params-1', method: 'ping', params: null }), 'null-params-1')).toBe(
        'pong',
      );
      const error = expectError(
        await exchange({ jsonrpc: '2.0', id: 'null-params-2', method: 'getLiveSession', params: null }),
        -32602,
        'null-params-2',
      );
      expect(error.data!.field).toBe('connectionId');
    });

    it('answers an empty batch with a single error object, not an array', async () => {
      const response = await exchange('[]');
      expect(Array.isArray(response)).toBe(false);
      expectError(response, -32600, null);
    });
  });

  describe('-32601 method not found', () => {
    it.each(['noSuchMethod', 'AddMessage', 'rpc.unknown', '', 'toString', '__proto__', 'constructor', 'messagesReceived'])(
      'answers %p naming the method',
      async (method) => {
        const { response, id } = await request(method, {});
        const error = expectError(response, -32601, id);
        expect(error.message).toContain(method);
        expect(error.data!.retryable).toBe(false);
      },
    );
  });

  describe('-32602 invalid params', () => {
    const conn = 'conn-invalid';
    const addBase = { connectionId: conn, recipientDids: ['did:a'], payload: { a: 1 } };
    const cases: [string, string, unknown, string | RegExp][] = [
      ['addMessage', 'missing connectionId', { recipientDids: ['did:a'], payload: {} }, 'connectionId'],
      ['addMessage', 'numeric connectionId', { ...addBase, connectionId: 7 }, 'connectionId'],
      ['addMessage', 'missing recipientDids', { connectionId: conn, payload: {} }, 'recipientDids'],
      ['addMessage', 'empty recipientDids', { ...addBase, recipientDids: [] }, 'recipientDids'],
      ['addMessage', 'string recipientDids', { ...addBase, recipientDids: 'did:a' }, 'recipientDids'],
      ['addMessage', 'a numeric recipient', { ...addBase, recipientDids: ['did:a', 5] }, /^recipientDids/],
      ['addMessage', 'missing payload', { connectionId: conn, recipientDids: ['did:a'] }, 'payload'],
      ['addMessage', 'string payload', { ...addBase, payload: 'ciphertext' }, 'payload'],
      ['addMessage', 'array payload', { ...addBase, payload: [1] }, 'payload'],
      ['addMessage', 'numeric messageId', { ...addBase, messageId: 5 }, 'messageId'],
      ['addMessage', 'params as an array', [conn, ['did:a'], {}], 'params'],
      ['takeFromQueue', 'missing connectionId', {}, 'connectionId'],
      ['takeFromQueue', 'limit 0', { connectionId: conn, limit: 0 }, 'limit'],
      ['takeFromQueue', 'limit 1.5', { connectionId: conn, limit: 1.5 }, 'limit'],
      ['takeFromQueue', 'limit "3"', { connectionId: conn, limit: '3' }, 'limit'],
      ['takeFromQueue', 'limit -1', { connectionId: conn, limit: -1 }, 'limit'],
      ['takeFromQueue', 'limitBytes -1', { connectionId: conn, limitBytes: -1 }, 'limitBytes'],
      ['takeFromQueue', 'limitBytes 0', { connectionId: conn, limitBytes: 0 }, 'limitBytes'],
      ['takeFromQueue', 'deleteMessages "yes"', { connectionId: conn, deleteMessages: 'yes' }, 'deleteMessages'],
      ['takeFromQueue', 'numeric recipientDid', { connectionId: conn, recipientDid: 1 }, 'recipientDid'],
      ['takeFromQueue', 'params as an array', [conn], 'params'],
      ['getAvailableMessageCount', 'missing connectionId', {}, 'connectionId'],
      ['getAvailableMessageCount', 'params as an array', [conn], 'params'],
      ['removeMessages', 'missing messageIds', { connectionId: conn }, 'messageIds'],
      ['removeMessages', 'messageIds not an array', { connectionId: conn, messageIds: 'm-1' }, 'messageIds'],
      ['removeMessages', 'messageIds an object', { connectionId: conn, messageIds: { 0: 'm-1' } }, 'messageIds'],
      ['removeMessages', 'a numeric message id', { connectionId: conn, messageIds: [1] }, /^messageIds/],
      ['removeAllMessages', 'missing connectionId', {}, 'connectionId'],
      ['removeAllMessages', 'params as an array', [conn], 'params'],
      ['addLiveSession', 'missing sessionId', { connectionId: conn }, 'sessionId'],
      ['addLiveSession', 'reclaim "true"', { connectionId: conn, sessionId: 's', reclaim: 'true' }, 'reclaim'],
      ['addLiveSession', 'params as an array', [conn, 's'], 'params'],
      ['getLiveSession', 'missing connectionId', {}, 'connectionId'],
      ['removeLiveSession', 'numeric sessionId', { connectionId: conn, sessionId: 5 }, 'sessionId'],
      ['rpc.on', 'named params', { event: 'messagesReceived' }, 'params'],
      ['rpc.off', 'no params', undefined, 'params'],
    ];

    it.each(cases)('%s with %s names the offending field', async (method, _name, params, field) => {
      const { response, id } = await request(method, params);
      const error = expectError(response, -32602, id);
      expect(error.data!.retryable).toBe(false);
      if (typeof field === 'string') {
        expect(error.data!.field).toBe(field);
        expect(error.message).toContain(field);
      } else {
        expect(error.data!.field).toMatch(field);
        expect(error.message).toContain(error.data!.field);
      }
    });

    it('a method needing params, called without params, names the missing field', async () => {
      for (const method of [
        'addMessage',
        'takeFromQueue',
        'getAvailableMessageCount',
        'removeMessages',
        'removeAllMessages',
        'addLiveSession',
        'getLiveSession',
        'removeLiveSession',
      ]) {
        const { response, id } = await request(method);
        expect(expectError(response, -32602, id).data!.field).toBe('connectionId');
      }
    });

    it('a rejected call changes nothing', async () => {
      const c = unique('conn');
      await add(c);
      await request('addMessage', { connectionId: c, recipientDids: [], payload: { a: 1 } });
      await request('takeFromQueue', { connectionId: c, limit: 0 });
      await request('takeFromQueue', { connectionId: c, deleteMessages: 'yes' });
      await request('removeMessages', { connectionId: c, messageIds: 'all' });
      await request('addLiveSession', { connectionId: c, sessionId: 's', reclaim: 'yes' });
      expect(await count(c)).toBe(1);
      expect(await client.call('getLiveSession', { connectionId: c })).toBe(false);
    });
  });

  describe('-32001 payload too large', () => {
    it('answers an addMessage payload larger than MAX_PAYLOAD_BYTES, stores nothing, and the socket stays usable', async () => {
      const c = unique('conn');
      const { response, id } = await request('addMessage', {
        connectionId: c,
        recipientDids: ['did:a'],
        payload: { data: 'x'.repeat(PAYLOAD_LIMIT) },
      });
      const error = expectError(response, -32001, id);
      expect(error.data!.retryable).toBe(false);
      expect(await count(c)).toBe(0);
      // a payload of exactly the limit is accepted
      const exact = { data: 'y'.repeat(PAYLOAD_LIMIT - '{"data":""}'.length) };
      expect(Buffer.byteLength(JSON.stringify(exact))).toBe(PAYLOAD_LIMIT);
      await add(c, exact);
      const [taken] = await client.call<Queued[]>('takeFromQueue', { connectionId: c });
      expect(taken.encryptedMessage).toEqual(exact);
      expect(await client.call('ping')).toBe('pong');
    });

    it('counts bytes, not characters', async () => {
      const c = unique('conn');
      // 700 three-byte characters: 700 characters, 2100 bytes
      const { response, id } = await request('addMessage', { connectionId: c, recipientDids: ['did:a'], payload: { t: '€'.repeat(700) } });
      expectError(response, -32001, id);
      expect(await count(c)).toBe(0);
    });
  });

  describe('params leniency', () => {
    it('ignores unknown extra fields in params', async () => {
      const c = unique('conn');
      const added = await request('addMessage', {
        connectionId: c,
        recipientDids: ['did:a'],
        payload: { a: 1 },
        unknown: true,
        priority: 5,
        nested: { x: [1] },
      });
      const { messageId } = expectResult(added.response, added.id) as { messageId: string };
      const counted = await request('getAvailableMessageCount', { connectionId: c, whatever: 'x' });
      expect(expectResult(counted.response, counted.id)).toBe(1);
      const taken = await request('takeFromQueue', { connectionId: c, extra: [1, 2], limit: 5 });
      expect((expectResult(taken.response, taken.id) as Queued[]).map((m) => m.id)).toEqual([messageId]);
      const removed = await request('removeMessages', { connectionId: c, messageIds: [messageId], force: true });
      expect(expectResult(removed.response, removed.id)).toBe(true);
      const live = await request('addLiveSession', { connectionId: c, sessionId: 's', ttl: 10 });
      expect(expectResult(live.response, live.id)).toBe(true);
      const ping = await request('ping', { unexpected: 'param' });
      expect(expectResult(ping.response, ping.id)).toBe('pong');
      await client.call('removeLiveSession', { connectionId: c });
    });

    it.each<[string, unknown]>([
      ['a string', 'fcm:device-token'],
      ['a number', 42],
      ['null', null],
      ['an array', ['fcm', 'token']],
      ['an empty object', {}],
      ['{type: 42}', { type: 42 }],
      ["{type: 'unknown'}", { type: 'unknown', token: 't' }],
      ["{type: 'fcm'} without token", { type: 'fcm' }],
      ["{type: 'fcm', token: 42}", { type: 'fcm', token: 42 }],
      ["{type: 'apns', token: ''}", { type: 'apns', token: '' }],
    ])('accepts pushNotificationToken as %s without an error', async (_name, pushNotificationToken) => {
      const c = unique('conn');
      const { response, id } = await request('addMessage', {
        connectionId: c,
        recipientDids: ['did:a'],
        payload: { a: 1 },
        pushNotificationToken,
      });
      expect(expectResult(response, id)).toEqual({ messageId: expect.any(String) });
      expect(await count(c)).toBe(1);
    });
  });

  describe('notifications (no id) get no response', () => {
    it.each<[string, unknown]>([
      ['ping', { jsonrpc: '2.0', method: 'ping' }],
      ['an unknown method', { jsonrpc: '2.0', method: 'noSuchMethod', params: {} }],
      ['invalid params', { jsonrpc: '2.0', method: 'takeFromQueue', params: { limit: 0 } }],
      ['params as an array for a named-params method', { jsonrpc: '2.0', method: 'addMessage', params: ['x'] }],
      ['missing params', { jsonrpc: '2.0', method: 'getLiveSession' }],
      ['rpc.on', { jsonrpc: '2.0', method: 'rpc.on', params: ['messagesReceived'] }],
      [
        'an oversized payload',
        { jsonrpc: '2.0', method: 'addMessage', params: { connectionId: 'n', recipientDids: ['d'], payload: { x: 'x'.repeat(3000) } } },
      ],
    ])('%s', async (_name, frame) => {
      await expectNoResponse(frame);
    });

    it('a valid addMessage notification is still carried out, silently', async () => {
      const c = unique('conn');
      client.socket.send(
        JSON.stringify({
          jsonrpc: '2.0',
          method: 'addMessage',
          params: { connectionId: c, recipientDids: ['did:a'], payload: { silent: true } },
        }),
      );
      const deadline = Date.now() + 5000;
      while ((await count(c)) !== 1) {
        if (Date.now() > deadline) throw new Error('the notified addMessage was never stored');
        await new Promise((resolve) => setImmediate(resolve));
      }
      // it has completed, so any response it produced would already be here
      await expectNoResponse({ jsonrpc: '2.0', method: 'ping' });
      const [taken] = await client.call<Queued[]>('takeFromQueue', { connectionId: c });
      expect(taken.encryptedMessage).toEqual({ silent: true });
    });
  });

  describe('batches', () => {
    it('answers a mixed batch with an array holding one response per request with an id, notifications omitted', async () => {
      const c = unique('conn');
      const batch = [
        { jsonrpc: '2.0', id: 'b-ping', method: 'ping' },
        { jsonrpc: '2.0', method: 'ping' },
        { jsonrpc: '2.0', id: 'b-add', method: 'addMessage', params: { connectionId: c, recipientDids: ['did:a'], payload: { b: 1 } } },
        { jsonrpc: '2.0', method: 'addMessage', params: { connectionId: c, recipientDids: [], payload: {} } },
        { jsonrpc: '2.0', id: 'b-unknown', method: 'nope' },
        { jsonrpc: '2.0', method: 'nopeNotification' },
        { jsonrpc: '2.0', id: 'b-invalid-params', method: 'takeFromQueue', params: { connectionId: c, limit: 0 } },
        { foo: 'boo' },
        { jsonrpc: '2.0', id: 'b-count', method: 'getAvailableMessageCount', params: { connectionId: 'nobody' } },
        { jsonrpc: '2.0', id: 2_000_001, method: 'ping' },
      ];
      const response = (await exchange(batch)) as Response[];
      expect(Array.isArray(response)).toBe(true);
      expect(response).toHaveLength(7);
      const byId = new Map(response.map((r) => [r.id, r]));
      expect(byId.size).toBe(7);
      expect(expectResult(byId.get('b-ping'), 'b-ping')).toBe('pong');
      expect(expectResult(byId.get('b-add'), 'b-add')).toEqual({ messageId: expect.any(String) });
      expect(expectError(byId.get('b-unknown'), -32601, 'b-unknown').message).toContain('nope');
      expect(expectError(byId.get('b-invalid-params'), -32602, 'b-invalid-params').data!.field).toBe('limit');
      expectError(byId.get(null), -32600, null);
      expect(expectResult(byId.get('b-count'), 'b-count')).toBe(0);
      expect(expectResult(byId.get(2_000_001), 2_000_001)).toBe('pong');
      expect(await count(c)).toBe(1);
    });

    it('refuses a batch of more than 1,000 requests with one invalid-request error', async () => {
      const response = (await exchange(Array.from({ length: 1001 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' })))) as Response;
      expect(response).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600, data: { retryable: false } } });
      expect(
        ((await exchange(Array.from({ length: 1000 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' })))) as Response[]).length,
      ).toBe(1000);
    });

    it('answers a batch of one with an array of one', async () => {
      const response = await exchange([{ jsonrpc: '2.0', id: 'solo', method: 'ping' }]);
      expect(Array.isArray(response)).toBe(true);
      expect(response).toEqual([{ jsonrpc: '2.0', id: 'solo', result: 'pong' }]);
      const error = (await exchange([{ jsonrpc: '2.0', id: 'solo-error', method: 'nope' }])) as Response[];
      expect(Array.isArray(error)).toBe(true);
      expect(error).toHaveLength(1);
      expectError(error[0], -32601, 'solo-error');
    });

    it('a batch of one request among notifications still answers an array', async () => {
      const response = await exchange([
        { jsonrpc: '2.0', method: 'ping' },
        { jsonrpc: '2.0', id: 'only', method: 'ping' },
        { jsonrpc: '2.0', method: 'nope' },
      ]);
      expect(response).toEqual([{ jsonrpc: '2.0', id: 'only', result: 'pong' }]);
    });

    it('sends nothing at all for a batch of only notifications, valid or not', async () => {
      await expectNoResponse([
        { jsonrpc: '2.0', method: 'ping' },
        { jsonrpc: '2.0', method: 'nope', params: [1] },
        { jsonrpc: '2.0', method: 'takeFromQueue', params: { limit: 'x' } },
        { jsonrpc: '2.0', method: 'rpc.on', params: ['messagesReceived'] },
      ]);
    });

    it('answers [1,2,3] with an array of three invalid-request errors with id null', async () => {
      const response = (await exchange('[1,2,3]')) as Response[];
      expect(Array.isArray(response)).toBe(true);
      expect(response).toHaveLength(3);
      for (const entry of response) expectError(entry, -32600, null);
    });

    it('answers invalid entries of a batch one by one: [1], [[]], ["x", null]', async () => {
      for (const [frame, n] of [
        ['[1]', 1],
        ['[[]]', 1],
        ['["x",null]', 2],
        ['[{}]', 1],
      ] as const) {
        const response = (await exchange(frame)) as Response[];
        expect(Array.isArray(response)).toBe(true);
        expect(response).toHaveLength(n);
        for (const entry of response) expectError(entry, -32600, null);
      }
    });

    it('answers a batch whose JSON is invalid with one parse error, not an array', async () => {
      const response = await exchange('[{"jsonrpc":"2.0","method":"ping","id":"1"},{"jsonrpc":"2.0","method"]');
      expect(Array.isArray(response)).toBe(false);
      expectError(response, -32700, null);
    });

    it('answers a payload-too-large entry in a batch without failing the other entries', async () => {
      const c = unique('conn');
      const response = (await exchange([
        {
          jsonrpc: '2.0',
          id: 'big',
          method: 'addMessage',
          params: { connectionId: c, recipientDids: ['d'], payload: { x: 'x'.repeat(3000) } },
        },
        { jsonrpc: '2.0', id: 'small', method: 'addMessage', params: { connectionId: c, recipientDids: ['d'], payload: { x: 'x' } } },
      ])) as Response[];
      const byId = new Map(response.map((r) => [r.id, r]));
      expectError(byId.get('big'), -32001, 'big');
      expectResult(byId.get('small'), 'small');
      expect(await count(c)).toBe(1);
    });
  });

  describe('every error carries data.retryable', () => {
    it('for each code the client can provoke', async () => {
      const frames: [string, number][] = [
        ['{', -32700],
        ['[]', -32600],
        ['{"jsonrpc":"2.0","id":"e1","method":1}', -32600],
        ['{"jsonrpc":"2.0","id":"e2","method":"nope"}', -32601],
        ['{"jsonrpc":"2.0","id":"e3","method":"getLiveSession","params":{}}', -32602],
        [
          JSON.stringify({
            jsonrpc: '2.0',
            id: 'e4',
            method: 'addMessage',
            params: { connectionId: 'c', recipientDids: ['d'], payload: { x: 'x'.repeat(5000) } },
          }),
          -32001,
        ],
      ];
      for (const [frame, code] of frames) {
        const response = (await exchange(frame)) as Response;
        expect(response.error?.code).toBe(code);
        expect(response.error?.data?.retryable).toBe(false);
      }
    });
  });
});
