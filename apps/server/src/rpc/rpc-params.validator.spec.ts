import { buildOpenRpcDocument } from '@didcomm-mpr/protocol';
import { RpcException, RpcExceptionCode } from './rpc.exception';
import { RpcParamsValidator } from './rpc-params.validator';

const validator = new RpcParamsValidator(buildOpenRpcDocument({ maxPayloadBytes: 4 * 1024 * 1024, maxTakeMessages: 100 }));
/** Each method's params as the dispatcher parses them: validated with the schemas of the OpenRPC document. */
const parseParams = {
  addMessage: (raw: unknown) => validator.parse('addMessage', raw),
  takeFromQueue: (raw: unknown) => validator.parse('takeFromQueue', raw),
  getAvailableMessageCount: (raw: unknown) => validator.parse('getAvailableMessageCount', raw),
  removeMessages: (raw: unknown) => validator.parse('removeMessages', raw),
  removeAllMessages: (raw: unknown) => validator.parse('removeAllMessages', raw),
  addLiveSession: (raw: unknown) => validator.parse('addLiveSession', raw),
  getLiveSession: (raw: unknown) => validator.parse('getLiveSession', raw),
  removeLiveSession: (raw: unknown) => validator.parse('removeLiveSession', raw),
  getQueueStats: (raw: unknown) => validator.parse('getQueueStats', raw),
  eventNames: (raw: unknown) => validator.parseEventNames(raw),
};

/** Runs `parse` and returns the RpcException it throws (fails the test if it does not throw one). */
function rejection(parse: () => unknown): RpcException {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(RpcException);
    return error as RpcException;
  }
  throw new Error('expected the validator to throw an RpcException');
}

/** Asserts an invalid-params rejection whose `field` is `field` and whose message names it. */
function expectInvalid(parse: () => unknown, field: string): void {
  const error = rejection(parse);
  expect(error.code).toBe(RpcExceptionCode.InvalidParams);
  expect(error.field).toBe(field);
  expect(error.message).toContain(field);
}

const addBase = { connectionId: 'c1', recipientDids: ['did:example:alice'], payload: { protected: 'p', ciphertext: 'x' } };

describe('RpcParamsValidator', () => {
  describe('named params must be an object', () => {
    const named = [
      'addMessage',
      'takeFromQueue',
      'getAvailableMessageCount',
      'removeMessages',
      'removeAllMessages',
      'addLiveSession',
      'getLiveSession',
      'removeLiveSession',
      'getQueueStats',
    ] as const;

    it.each(named)('%s refuses positional (array) params, naming "params"', (method) => {
      expectInvalid(() => parseParams[method](['c1']), 'params');
    });

    it.each(named)('%s refuses a string, a number or a boolean as params, naming "params"', (method) => {
      for (const raw of ['c1', 42, true]) expectInvalid(() => parseParams[method](raw), 'params');
    });

    it.each(named)('%s without params names connectionId as missing', (method) => {
      expectInvalid(() => parseParams[method](undefined), 'connectionId');
      expectInvalid(() => parseParams[method]({}), 'connectionId');
    });

    it.each(named)('%s checks connectionId: type, emptiness, length; null counts as missing', (method) => {
      for (const connectionId of [42, true, {}, [], '', 'x'.repeat(513), null]) {
        const error = rejection(() => parseParams[method]({ ...addBase, sessionId: 's', messageIds: [], connectionId }));
        expect(error.field).toBe('connectionId');
        expect(error.message).toContain('connectionId');
      }
      // 512 characters is still fine
      expect(() => parseParams[method]({ ...addBase, sessionId: 's', messageIds: [], connectionId: 'x'.repeat(512) })).not.toThrow();
    });
  });

  describe('addMessage', () => {
    it('returns the params, ignoring unknown fields', () => {
      const parsed = parseParams.addMessage({ ...addBase, messageId: 'm-1', extra: 1, another: { deep: true } });
      expect(parsed).toEqual({ ...addBase, messageId: 'm-1', pushNotificationToken: undefined, ttlMs: undefined });
      expect(parsed).not.toHaveProperty('extra');
      expect(parsed.payload).toBe(addBase.payload);
    });

    it('takes an optional ttlMs of at least 1 ms', () => {
      expect(parseParams.addMessage({ ...addBase, ttlMs: 5000 }).ttlMs).toBe(5000);
      expect(parseParams.addMessage({ ...addBase, ttlMs: null }).ttlMs).toBeUndefined();
      for (const ttlMs of [0, -1, 1.5, '5000', true]) expectInvalid(() => parseParams.addMessage({ ...addBase, ttlMs }), 'ttlMs');
    });

    it('requires recipientDids as a non-empty array of non-empty strings', () => {
      const { recipientDids: _omit, ...withoutDids } = addBase;
      expectInvalid(() => parseParams.addMessage(withoutDids), 'recipientDids');
      expectInvalid(() => parseParams.addMessage({ ...addBase, recipientDids: null }), 'recipientDids');
      expectInvalid(() => parseParams.addMessage({ ...addBase, recipientDids: [] }), 'recipientDids');
      expectInvalid(() => parseParams.addMessage({ ...addBase, recipientDids: 'did:a' }), 'recipientDids');
      expectInvalid(() => parseParams.addMessage({ ...addBase, recipientDids: { 0: 'did:a' } }), 'recipientDids');
      expectInvalid(() => parseParams.addMessage({ ...addBase, recipientDids: [42] }), 'recipientDids[0]');
      expectInvalid(() => parseParams.addMessage({ ...addBase, recipientDids: ['did:a', ''] }), 'recipientDids[1]');
      expectInvalid(() => parseParams.addMessage({ ...addBase, recipientDids: ['did:a', 'did:b', null] }), 'recipientDids[2]');
      expectInvalid(() => parseParams.addMessage({ ...addBase, recipientDids: ['x'.repeat(8193)] }), 'recipientDids[0]');
      expectInvalid(
        () => parseParams.addMessage({ ...addBase, recipientDids: Array.from({ length: 10_001 }, () => 'd') }),
        'recipientDids',
      );
      // long did:peer:2 DIDs are fine
      expect(parseParams.addMessage({ ...addBase, recipientDids: ['x'.repeat(8192)] }).recipientDids).toHaveLength(1);
    });

    it('requires payload as a JSON object', () => {
      const { payload: _omit, ...withoutPayload } = addBase;
      expectInvalid(() => parseParams.addMessage(withoutPayload), 'payload');
      for (const payload of [null, 'ciphertext', 42, true, [], [{ a: 1 }]]) {
        expectInvalid(() => parseParams.addMessage({ ...addBase, payload }), 'payload');
      }
      expect(parseParams.addMessage({ ...addBase, payload: {} }).payload).toEqual({});
    });

    it('checks the optional messageId (null means unset)', () => {
      expect(parseParams.addMessage({ ...addBase, messageId: null }).messageId).toBeUndefined();
      expect(parseParams.addMessage(addBase).messageId).toBeUndefined();
      for (const messageId of [42, '', {}, ['m'], 'm'.repeat(513)]) {
        expectInvalid(() => parseParams.addMessage({ ...addBase, messageId }), 'messageId');
      }
    });

    it('reports the first problem in field order: connectionId, then recipientDids, then payload', () => {
      expectInvalid(() => parseParams.addMessage({}), 'connectionId');
      expectInvalid(() => parseParams.addMessage({ connectionId: 'c' }), 'recipientDids');
      expectInvalid(() => parseParams.addMessage({ connectionId: 'c', recipientDids: ['d'] }), 'payload');
    });

    it('keeps a usable pushNotificationToken', () => {
      expect(
        parseParams.addMessage({ ...addBase, pushNotificationToken: { type: 'fcm', token: 'abc', appId: 'app' } }).pushNotificationToken,
      ).toEqual({
        type: 'fcm',
        token: 'abc',
        appId: 'app',
      });
      expect(
        parseParams.addMessage({ ...addBase, pushNotificationToken: { type: 'apns', token: 't', extra: 1 } }).pushNotificationToken,
      ).toEqual({
        type: 'apns',
        token: 't',
        appId: undefined,
      });
    });

    it('never fails on odd pushNotificationToken shapes: it ignores what it cannot use', () => {
      const odd: unknown[] = [
        'fcm:abc',
        42,
        true,
        null,
        [],
        ['fcm', 'abc'],
        {},
        { type: 42 },
        { type: '' },
        { type: null, token: 'abc' },
        { token: 'abc' },
        { type: { nested: true } },
      ];
      for (const pushNotificationToken of odd) {
        expect(parseParams.addMessage({ ...addBase, pushNotificationToken }).pushNotificationToken).toBeUndefined();
      }
      // an unknown type or a missing/odd token keeps the type (the push adapter decides), still no error
      expect(parseParams.addMessage({ ...addBase, pushNotificationToken: { type: 'unknown' } }).pushNotificationToken).toEqual({
        type: 'unknown',
        token: undefined,
        appId: undefined,
      });
      expect(parseParams.addMessage({ ...addBase, pushNotificationToken: { type: 'fcm' } }).pushNotificationToken?.token).toBeUndefined();
      expect(
        parseParams.addMessage({ ...addBase, pushNotificationToken: { type: 'fcm', token: 42 } }).pushNotificationToken?.token,
      ).toBeUndefined();
      expect(
        parseParams.addMessage({ ...addBase, pushNotificationToken: { type: 'fcm', token: '' } }).pushNotificationToken?.token,
      ).toBeUndefined();
      expect(
        parseParams.addMessage({ ...addBase, pushNotificationToken: { type: 'fcm', appId: 7 } }).pushNotificationToken?.appId,
      ).toBeUndefined();
    });
  });

  describe('takeFromQueue', () => {
    it('returns only the known params, all optional but connectionId', () => {
      expect(parseParams.takeFromQueue({ connectionId: 'c', ignored: 'x' })).toEqual({
        connectionId: 'c',
        recipientDid: undefined,
        limit: undefined,
        limitBytes: undefined,
        deleteMessages: undefined,
      });
      expect(
        parseParams.takeFromQueue({ connectionId: 'c', recipientDid: 'did:a', limit: 3, limitBytes: 1, deleteMessages: true }),
      ).toEqual({
        connectionId: 'c',
        recipientDid: 'did:a',
        limit: 3,
        limitBytes: 1,
        deleteMessages: true,
      });
    });

    it('treats null optional params as unset', () => {
      expect(
        parseParams.takeFromQueue({ connectionId: 'c', recipientDid: null, limit: null, limitBytes: null, deleteMessages: null }),
      ).toEqual({
        connectionId: 'c',
        recipientDid: undefined,
        limit: undefined,
        limitBytes: undefined,
        deleteMessages: undefined,
      });
    });

    it.each([0, -1, 1.5, '3', true, {}, [], Number.MAX_SAFE_INTEGER + 1, 1e300])('refuses limit %p', (limit) => {
      expectInvalid(() => parseParams.takeFromQueue({ connectionId: 'c', limit }), 'limit');
    });

    it.each([0, -1, 2.5, '100', false])('refuses limitBytes %p', (limitBytes) => {
      expectInvalid(() => parseParams.takeFromQueue({ connectionId: 'c', limitBytes }), 'limitBytes');
    });

    it.each(['yes', 'true', 1, 0, {}, []])('refuses deleteMessages %p', (deleteMessages) => {
      expectInvalid(() => parseParams.takeFromQueue({ connectionId: 'c', deleteMessages }), 'deleteMessages');
    });

    it('checks recipientDid', () => {
      for (const recipientDid of [42, '', ['did:a'], 'x'.repeat(8193)]) {
        expectInvalid(() => parseParams.takeFromQueue({ connectionId: 'c', recipientDid }), 'recipientDid');
      }
      expect(parseParams.takeFromQueue({ connectionId: 'c', recipientDid: 'x'.repeat(8192) }).recipientDid).toHaveLength(8192);
    });
  });

  describe('getAvailableMessageCount and removeAllMessages', () => {
    it.each(['getAvailableMessageCount', 'removeAllMessages'] as const)('%s takes connectionId and an optional recipientDid', (method) => {
      expect(parseParams[method]({ connectionId: 'c', extra: true })).toEqual({ connectionId: 'c', recipientDid: undefined });
      expect(parseParams[method]({ connectionId: 'c', recipientDid: 'did:a' })).toEqual({ connectionId: 'c', recipientDid: 'did:a' });
      expectInvalid(() => parseParams[method]({ connectionId: 'c', recipientDid: 7 }), 'recipientDid');
      expectInvalid(() => parseParams[method]({ connectionId: 'c', recipientDid: '' }), 'recipientDid');
    });
  });

  describe('removeMessages', () => {
    it('takes a possibly empty array of ids', () => {
      expect(parseParams.removeMessages({ connectionId: 'c', messageIds: [] })).toEqual({ connectionId: 'c', messageIds: [] });
      expect(parseParams.removeMessages({ connectionId: 'c', messageIds: ['a', 'b'], extra: 1 })).toEqual({
        connectionId: 'c',
        messageIds: ['a', 'b'],
      });
    });

    it('refuses a missing or non-array messageIds, and names a bad item', () => {
      expectInvalid(() => parseParams.removeMessages({ connectionId: 'c' }), 'messageIds');
      expectInvalid(() => parseParams.removeMessages({ connectionId: 'c', messageIds: null }), 'messageIds');
      expectInvalid(() => parseParams.removeMessages({ connectionId: 'c', messageIds: 'a' }), 'messageIds');
      expectInvalid(() => parseParams.removeMessages({ connectionId: 'c', messageIds: { a: 1 } }), 'messageIds');
      expectInvalid(() => parseParams.removeMessages({ connectionId: 'c', messageIds: ['a', 1] }), 'messageIds[1]');
      expectInvalid(() => parseParams.removeMessages({ connectionId: 'c', messageIds: [''] }), 'messageIds[0]');
      expectInvalid(() => parseParams.removeMessages({ connectionId: 'c', messageIds: ['m'.repeat(513)] }), 'messageIds[0]');
    });
  });

  describe('live sessions', () => {
    it('addLiveSession requires sessionId and takes an optional boolean reclaim', () => {
      expect(parseParams.addLiveSession({ connectionId: 'c', sessionId: 's', other: 1 })).toEqual({
        connectionId: 'c',
        sessionId: 's',
        reclaim: undefined,
      });
      expect(parseParams.addLiveSession({ connectionId: 'c', sessionId: 's', reclaim: true })).toEqual({
        connectionId: 'c',
        sessionId: 's',
        reclaim: true,
      });
      expect(parseParams.addLiveSession({ connectionId: 'c', sessionId: 's', reclaim: false }).reclaim).toBe(false);
      expectInvalid(() => parseParams.addLiveSession({ connectionId: 'c' }), 'sessionId');
      expectInvalid(() => parseParams.addLiveSession({ connectionId: 'c', sessionId: 5 }), 'sessionId');
      expectInvalid(() => parseParams.addLiveSession({ connectionId: 'c', sessionId: '' }), 'sessionId');
      expectInvalid(() => parseParams.addLiveSession({ connectionId: 'c', sessionId: 's', reclaim: 'yes' }), 'reclaim');
      expectInvalid(() => parseParams.addLiveSession({ connectionId: 'c', sessionId: 's', reclaim: 1 }), 'reclaim');
    });

    it('getLiveSession takes only connectionId', () => {
      expect(parseParams.getLiveSession({ connectionId: 'c', sessionId: 's' })).toEqual({ connectionId: 'c' });
    });

    it('removeLiveSession takes an optional sessionId', () => {
      expect(parseParams.removeLiveSession({ connectionId: 'c' })).toEqual({ connectionId: 'c', sessionId: undefined });
      expect(parseParams.removeLiveSession({ connectionId: 'c', sessionId: 's' })).toEqual({ connectionId: 'c', sessionId: 's' });
      expectInvalid(() => parseParams.removeLiveSession({ connectionId: 'c', sessionId: 1 }), 'sessionId');
      expectInvalid(() => parseParams.removeLiveSession({ connectionId: 'c', sessionId: '' }), 'sessionId');
    });
  });

  describe('eventNames (rpc.on / rpc.off)', () => {
    it('takes an array of event names', () => {
      expect(parseParams.eventNames(['messagesReceived'])).toEqual(['messagesReceived']);
      expect(parseParams.eventNames([])).toEqual([]);
    });

    it.each([undefined, null, 'messagesReceived', { 0: 'messagesReceived' }, [1], ['ok', null]])('refuses %p, naming params', (raw) => {
      expectInvalid(() => parseParams.eventNames(raw), 'params');
    });
  });
});

describe('RpcParamsValidator storability', () => {
  it('refuses keys PostgreSQL cannot store, naming the field', () => {
    const base = { connectionId: 'c', recipientDids: ['did:a'], payload: {} };
    expect(() => parseParams.addMessage({ ...base, connectionId: 'a\u0000b' })).toThrow(expect.objectContaining({ field: 'connectionId' }));
    expect(() => parseParams.addMessage({ ...base, messageId: 'x\u0000' })).toThrow(expect.objectContaining({ field: 'messageId' }));
    expect(() => parseParams.addMessage({ ...base, recipientDids: ['did:a', 'did:\u0000'] })).toThrow(
      expect.objectContaining({ field: 'recipientDids[1]' }),
    );
    expect(() => parseParams.addMessage({ ...base, connectionId: '漢'.repeat(400) })).toThrow(
      expect.objectContaining({ field: 'connectionId' }),
    );
    expect(parseParams.addMessage({ ...base, connectionId: '漢'.repeat(300) }).connectionId).toHaveLength(300);
  });
});

describe('RpcParamsValidator messages and limits from the schemas', () => {
  const base = { connectionId: 'c', recipientDids: ['did:a'], payload: {} };
  const messageOf = (parse: () => unknown) => rejection(parse).message;

  it('names the rule each schema keyword stands for', () => {
    expect(messageOf(() => parseParams.addMessage({ ...base, connectionId: 'x'.repeat(513) }))).toBe(
      'Invalid params: connectionId must be at most 512 characters',
    );
    expect(messageOf(() => parseParams.addMessage({ ...base, connectionId: 'a\u0000b' }))).toBe(
      'Invalid params: connectionId must not contain the NUL character',
    );
    expect(messageOf(() => parseParams.addMessage({ ...base, connectionId: '漢'.repeat(400) }))).toBe(
      'Invalid params: connectionId must be at most 1024 bytes in UTF-8',
    );
    expect(messageOf(() => parseParams.addMessage({ ...base, recipientDids: ['d', 7] }))).toBe(
      'Invalid params: recipientDids[1] must be a string',
    );
    expect(messageOf(() => parseParams.addMessage({ ...base, recipientDids: [] }))).toBe(
      'Invalid params: recipientDids must have at least 1 item',
    );
    expect(messageOf(() => parseParams.takeFromQueue({ connectionId: 'c', limit: 0 }))).toBe('Invalid params: limit must be at least 1');
    expect(messageOf(() => parseParams.takeFromQueue({ connectionId: 'c', limit: 1.5 }))).toBe('Invalid params: limit must be an integer');
    expect(messageOf(() => parseParams.addMessage({ connectionId: 'c' }))).toBe('Invalid params: recipientDids is required');
    expect(messageOf(() => parseParams.addMessage(['c']))).toBe('Invalid params: params must be an object of named parameters');
  });

  it('refuses a payload nested more than 1000 levels deep, and takes one of 1000', () => {
    const nest = (levels: number) => {
      let value: Record<string, unknown> = {};
      for (let i = 1; i < levels; i++) value = { a: value };
      return value;
    };
    expect(parseParams.addMessage({ ...base, payload: nest(1000) }).payload).toBeDefined();
    expectInvalid(() => parseParams.addMessage({ ...base, payload: nest(1001) }), 'payload');
    expect(messageOf(() => parseParams.addMessage({ ...base, payload: nest(1001) }))).toBe(
      'Invalid params: payload must not be nested more than 1000 levels deep',
    );
  });

  it('counts lengths in code points (as JSON Schema and PostgreSQL do) and bytes in UTF-8', () => {
    // 256 emoji: 512 UTF-16 units, 256 code points, 1024 bytes: within both bounds
    expect(parseParams.getLiveSession({ connectionId: '😀'.repeat(256) }).connectionId).toHaveLength(512);
    expectInvalid(() => parseParams.getLiveSession({ connectionId: '😀'.repeat(257) }), 'connectionId');
    // a DID has no byte bound of its own: 8192 three-byte characters are fine
    expect(parseParams.takeFromQueue({ connectionId: 'c', recipientDid: '€'.repeat(8192) }).recipientDid).toHaveLength(8192);
  });
});
