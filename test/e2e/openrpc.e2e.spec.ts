import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import Ajv, { ValidateFunction } from 'ajv';
import jsonSchemaToolsMetaSchema from '@json-schema-tools/meta-schema';
import {
  addSchemaKeywords,
  OpenRpcDocument,
  OpenRpcMethod,
  RETRYABLE_ERROR_CODES,
  RpcErrorCode,
  SCHEMA_KEYWORDS,
} from '@didcomm-mpr/protocol';
import { JsonRpcWsClient, REPO_ROOT } from '@didcomm-mpr/test-kit';
import { startTestServer, TestServer } from '../support/test-server';

/**
 * The OpenRPC document the server answers to `rpc.discover`: valid against the OpenRPC meta-schema, equal to the
 * committed docs/openrpc.json, true to what the server answers, and made of the schemas the server validates with.
 */

// The package's typings declare the document's types only; the meta-schema itself is its runtime export.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { openrpcDocument: openRpcMetaSchema } = require('@open-rpc/meta-schema') as { openrpcDocument: object };
const COMMITTED = path.join(REPO_ROOT, 'docs', 'openrpc.json');
/** `npm run openrpc` sets it: the test then writes the served document instead of comparing. */
const WRITE = process.env.OPENRPC_WRITE === '1';

/** ajv for result schemas, with the server's extension keywords known (formats are annotations here). */
function resultValidator(): Ajv {
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, validateFormats: false });
  addSchemaKeywords(ajv);
  return ajv;
}

describe('OpenRPC document (rpc.discover)', () => {
  let server: TestServer;
  let client: JsonRpcWsClient;
  let document: OpenRpcDocument;
  const results = new Map<string, ValidateFunction>();

  beforeAll(async () => {
    server = await startTestServer();
    client = await JsonRpcWsClient.connect(server.wsUrl);
    document = await client.call<OpenRpcDocument>('rpc.discover');
    const ajv = resultValidator();
    for (const method of document.methods) results.set(method.name, ajv.compile(method.result!.schema));
  });

  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  const method = (name: string): OpenRpcMethod => document.methods.find((candidate) => candidate.name === name)!;

  it('is a valid OpenRPC 1.x document (the OpenRPC meta-schema, checked with ajv)', () => {
    // The meta-schema's JSON Schemas follow the json-schema-tools meta-schema (draft 7 with a few more keywords),
    // which it names both with and without the trailing slash of that schema's $id.
    const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true });
    ajv.addMetaSchema(jsonSchemaToolsMetaSchema as object);
    const { $id: _id, ...withoutId } = jsonSchemaToolsMetaSchema as { $id: string };
    ajv.addSchema(withoutId, 'https://meta.json-schema.tools');
    const validate = ajv.compile(openRpcMetaSchema);
    const valid = validate(document);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    expect(document.openrpc).toMatch(/^1\.\d+\.\d+$/);
    // The check has teeth: a misplaced member or a bad schema is refused.
    expect(validate({ ...document, servers: 'ws://here' })).toBe(false);
    expect(validate({ ...document, methods: [{ ...document.methods[0], params: [{ name: 'x', schema: { type: 42 } }] }] })).toBe(false);
  });

  it('lists every method and the messagesReceived notification, and every error code with its retryability', () => {
    expect(document.methods.map((m) => m.name).sort()).toEqual(
      [
        'addMessage',
        'takeFromQueue',
        'getAvailableMessageCount',
        'removeMessages',
        'removeAllMessages',
        'getQueueStats',
        'addLiveSession',
        'getLiveSession',
        'removeLiveSession',
        'ping',
      ].sort(),
    );
    expect(document['x-notifications'].map((n) => n.name)).toEqual(['messagesReceived']);
    const errors = Object.values(document.components.errors);
    expect(errors.map((e) => e.code).sort()).toEqual(Object.values(RpcErrorCode).sort());
    for (const error of errors) expect(error.data).toEqual({ retryable: RETRYABLE_ERROR_CODES.has(error.code) });
    for (const m of document.methods) {
      for (const ref of m.errors ?? [])
        expect(document.components.errors[('$ref' in ref ? ref.$ref : '').replace('#/components/errors/', '')]).toBeDefined();
    }
    expect(Object.keys(document['x-schema-keywords']).sort()).toEqual(SCHEMA_KEYWORDS.map((k) => k.keyword).sort());
  });

  it('states the limits the server enforces, its configured ones included', async () => {
    const add = method('addMessage');
    const connectionId = add.params.find((p) => p.name === 'connectionId')!.schema;
    expect(connectionId).toMatchObject({ type: 'string', minLength: 1, maxLength: 512, 'x-maxUtf8Bytes': 1024, pattern: '^[^\\u0000]*$' });
    expect(add.params.find((p) => p.name === 'payload')!.schema).toMatchObject({
      type: 'object',
      'x-maxDepth': 1000,
      'x-maxJsonBytes': server.config.maxPayloadBytes,
    });
    expect(add.params.find((p) => p.name === 'recipientDids')!.schema).toMatchObject({
      minItems: 1,
      maxItems: 10_000,
      items: { maxLength: 8192 },
    });
    // Another server's document carries its own configuration.
    const small = await startTestServer({ MAX_PAYLOAD_BYTES: '2048', MAX_TAKE_MESSAGES: '7' }, server.databaseUrl);
    const other = await JsonRpcWsClient.connect(small.wsUrl);
    try {
      const smallDocument = await other.call<OpenRpcDocument>('rpc.discover');
      const payload = smallDocument.methods.find((m) => m.name === 'addMessage')!.params.find((p) => p.name === 'payload')!;
      expect(payload.schema['x-maxJsonBytes']).toBe(2048);
      expect(
        smallDocument.methods.find((m) => m.name === 'takeFromQueue')!.params.find((p) => p.name === 'limit')!.schema.description,
      ).toContain('7');
    } finally {
      await other.close();
      await small.stop();
    }
  });

  it('is the committed docs/openrpc.json (regenerate with `npm run openrpc`)', () => {
    const served = `${JSON.stringify(document, null, 2)}\n`;
    if (WRITE) writeFileSync(COMMITTED, served);
    const committed = readFileSync(COMMITTED, 'utf8');
    if (committed !== served) {
      throw new Error(
        'docs/openrpc.json differs from the document a server with the default configuration serves. Regenerate it with `npm run openrpc` and review the diff.',
      );
    }
  });

  it("each method's answers match its result schema, and the notification its params schema", async () => {
    const c = `openrpc-${Date.now()}`;
    const check = async (name: string, params?: unknown) => {
      const answer = await client.call(name, params);
      const validate = results.get(name)!;
      expect({ name, answer, valid: validate(answer), errors: validate.errors ?? null }).toEqual({
        name,
        answer,
        valid: true,
        errors: null,
      });
      return answer;
    };
    await check('ping');
    await check('getQueueStats', { connectionId: c });
    await check('addLiveSession', { connectionId: c, sessionId: 's1' });
    await check('getLiveSession', { connectionId: c });
    const { messageId } = (await check('addMessage', { connectionId: c, recipientDids: ['did:a'], payload: { ciphertext: 'x' } })) as {
      messageId: string;
    };
    await client.waitFor(() => client.notifiedIds(c).includes(messageId), 10_000, 'the live notification');
    const notification = client.notifications().find((n) => n.connectionId === c)!;
    const ajv = resultValidator();
    for (const param of document['x-notifications'][0].params) {
      const validate = ajv.compile(param.schema);
      expect({ param: param.name, valid: validate((notification as unknown as Record<string, unknown>)[param.name]) }).toEqual({
        param: param.name,
        valid: true,
      });
    }
    client.received.splice(0);
    await check('removeLiveSession', { connectionId: c, sessionId: 's1' });
    await check('getQueueStats', { connectionId: c });
    await check('addMessage', { connectionId: c, recipientDids: ['did:a'], payload: { n: 2 } });
    await check('getAvailableMessageCount', { connectionId: c });
    const taken = (await check('takeFromQueue', { connectionId: c })) as { id: string }[];
    expect(taken.length).toBeGreaterThan(0);
    await check('removeMessages', { connectionId: c, messageIds: taken.map((m) => m.id) });
    await check('removeAllMessages', { connectionId: c });
  });

  it('rejects with the codes and fields the schemas give, and rpc.on / rpc.off still work', async () => {
    await expect(client.call('addMessage', { connectionId: 'a\u0000b', recipientDids: ['d'], payload: {} })).rejects.toMatchObject({
      error: { code: -32602, data: { field: 'connectionId', retryable: false } },
    });
    await expect(client.call('removeMessages', { connectionId: 'c', messageIds: ['ok', '😀'.repeat(257)] })).rejects.toMatchObject({
      error: { code: -32602, data: { field: 'messageIds[1]' } },
    });
    expect(await client.call('rpc.on', ['messagesReceived'])).toEqual({ messagesReceived: 'ok' });
    expect(await client.call('rpc.off', ['messagesReceived'])).toEqual({ messagesReceived: 'ok' });
  });
});
