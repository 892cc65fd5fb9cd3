import { RETRYABLE_ERROR_CODES, RpcErrorCode } from './errors';
import {
  MAX_BATCH_REQUESTS,
  MAX_DID_LENGTH,
  MAX_ID_BYTES,
  MAX_ID_LENGTH,
  MAX_LIST_LENGTH,
  MAX_PAYLOAD_DEPTH,
  MAX_REQUEST_ID_LENGTH,
} from './limits';
import { RpcMethod, RpcNotification } from './methods';
import { ContentDescriptor, OpenRpcDocument, OpenRpcError, OpenRpcMethod } from './openrpc.types';
import {
  JsonSchema,
  MAX_DEPTH_KEYWORD,
  MAX_JSON_BYTES_KEYWORD,
  MAX_UTF8_BYTES_KEYWORD,
  NO_NUL_PATTERN,
  SCHEMA_KEYWORDS,
} from './schema-keywords';

/** The OpenRPC version the document follows. */
export const OPENRPC_VERSION = '1.3.2';
/** The version of the wire contract the document describes: raised with libs/protocol's own when the contract changes. */
export const API_VERSION = '0.1.0';

/** The limits of one server that the document states (its configuration); the rest are fixed (`limits.ts`). */
export interface ServerLimits {
  /** `MAX_PAYLOAD_BYTES`: largest `addMessage` payload, serialised. */
  maxPayloadBytes: number;
  /** `MAX_TAKE_MESSAGES`: default and maximum `limit` of `takeFromQueue`. */
  maxTakeMessages: number;
}

function identifier(description: string): JsonSchema {
  return {
    type: 'string',
    minLength: 1,
    maxLength: MAX_ID_LENGTH,
    pattern: NO_NUL_PATTERN,
    [MAX_UTF8_BYTES_KEYWORD]: MAX_ID_BYTES,
    description: `${description} At most ${MAX_ID_LENGTH} characters and ${MAX_ID_BYTES} bytes in UTF-8, without the NUL character.`,
  };
}

const DID: JsonSchema = {
  type: 'string',
  minLength: 1,
  maxLength: MAX_DID_LENGTH,
  pattern: NO_NUL_PATTERN,
  description: `A DID or key of a recipient, at most ${MAX_DID_LENGTH} characters, without the NUL character.`,
};

/** Integers of at least 1 that JavaScript holds exactly. */
const POSITIVE_INTEGER: JsonSchema = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER };

const QUEUED_MESSAGE: JsonSchema = {
  title: 'QueuedMessage',
  type: 'object',
  required: ['id', 'receivedAt', 'encryptedMessage'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', description: 'The message id: the `messageId` given to `addMessage`, or one the server generated.' },
    receivedAt: { type: 'string', format: 'date-time', description: 'When the server committed the message (ISO 8601, UTC).' },
    encryptedMessage: { type: 'object', description: 'Deep-equal to the `payload` given to `addMessage`.' },
  },
};

const CONNECTION_ID: ContentDescriptor = {
  name: 'connectionId',
  required: true,
  schema: identifier("The recipient connection's queue."),
};

function optionalRecipientDid(what: string): ContentDescriptor {
  return { name: 'recipientDid', schema: { ...DID, description: `${DID.description} Only messages addressed to it ${what}.` } };
}

function result(name: string, schema: JsonSchema): ContentDescriptor {
  return { name, schema };
}

/** The errors every method may answer besides its own: invalid params, storage, shutdown, internal. */
const COMMON_ERRORS = ['InvalidParams', 'StorageUnavailable', 'ShuttingDown', 'InternalError'] as const;

function errorRefs(...names: (keyof typeof RpcErrorCode)[]): { $ref: string }[] {
  return names.map((name) => ({ $ref: `#/components/errors/${name}` }));
}

function methods(limits: ServerLimits): OpenRpcMethod[] {
  return [
    {
      name: RpcMethod.AddMessage,
      summary: "Adds a message to a connection's queue; answers once it is committed to PostgreSQL.",
      description:
        'Concurrent adds share commits. The same `messageId` added again while it is queued for the connection stores nothing new and answers the same id, so a retry after a lost answer cannot queue it twice. A connection whose session is live gets the message at once as a `messagesReceived` notification (on whichever instance holds it); with no session anywhere the device is woken by a push.',
      paramStructure: 'by-name',
      params: [
        CONNECTION_ID,
        {
          name: 'recipientDids',
          required: true,
          schema: {
            type: 'array',
            minItems: 1,
            maxItems: MAX_LIST_LENGTH,
            items: DID,
            description: `The DIDs (or keys) the message is addressed to: 1 to ${MAX_LIST_LENGTH}.`,
          },
        },
        {
          name: 'payload',
          required: true,
          schema: {
            type: 'object',
            [MAX_DEPTH_KEYWORD]: MAX_PAYLOAD_DEPTH,
            [MAX_JSON_BYTES_KEYWORD]: limits.maxPayloadBytes,
            description: `The encrypted DIDComm message, any JSON object, nesting at most ${MAX_PAYLOAD_DEPTH} levels. At most ${limits.maxPayloadBytes} bytes serialised (this server's MAX_PAYLOAD_BYTES); a larger one gets -32001.`,
          },
        },
        { name: 'messageId', schema: identifier('Idempotency key, and the id of the message; generated when absent.') },
        {
          name: 'pushNotificationToken',
          schema: {
            description:
              "The recipient device's push token. Kept (the latest per connection) only when it is an object with a non-empty string `type`; `token` and `appId` only when non-empty strings. Any other value is ignored, never an error.",
            anyOf: [
              {
                title: 'PushNotificationToken',
                type: 'object',
                required: ['type'],
                properties: {
                  type: { type: 'string', minLength: 1, description: '`fcm` or `apns`; other types are ignored by the push transports.' },
                  token: { type: 'string', description: 'The device token.' },
                  appId: { type: 'string', description: "The app's Firebase project, for a server configured with several." },
                },
              },
              { description: 'Any other value: ignored.' },
            ],
          },
        },
        {
          name: 'ttlMs',
          schema: {
            ...POSITIVE_INTEGER,
            description:
              "Milliseconds until the message expires, if shorter than the server's MESSAGE_TTL_MS (a longer one is capped at it).",
          },
        },
      ],
      result: result('added', {
        type: 'object',
        required: ['messageId'],
        additionalProperties: false,
        properties: { messageId: { type: 'string' } },
      }),
      errors: errorRefs(...COMMON_ERRORS, 'PayloadTooLarge', 'QueueFull'),
    },
    {
      name: RpcMethod.TakeFromQueue,
      summary: 'Takes pending messages, oldest first; they are sending until acknowledged with removeMessages.',
      description:
        'Two concurrent takes never return the same message. A taken message not acknowledged within the redelivery timeout is pending again. The summed size of the returned payloads stays within `limitBytes` and the frame limit (an oldest message larger than that comes alone).',
      paramStructure: 'by-name',
      params: [
        CONNECTION_ID,
        optionalRecipientDid('are taken'),
        {
          name: 'limit',
          schema: {
            ...POSITIVE_INTEGER,
            description: `At most this many messages; default and maximum ${limits.maxTakeMessages} (this server's MAX_TAKE_MESSAGES): a larger limit is lowered to it, not refused.`,
          },
        },
        {
          name: 'limitBytes',
          schema: {
            ...POSITIVE_INTEGER,
            description: 'The summed payload bytes stay within this (the oldest message comes alone if larger).',
          },
        },
        {
          name: 'deleteMessages',
          schema: {
            type: 'boolean',
            description:
              'Delete the taken messages in the same transaction instead of waiting for removeMessages (an answer lost on the way loses them).',
          },
        },
      ],
      result: result('messages', { type: 'array', items: QUEUED_MESSAGE }),
      errors: errorRefs(...COMMON_ERRORS),
    },
    {
      name: RpcMethod.GetAvailableMessageCount,
      summary: 'Counts pending messages (not sending, not expired).',
      paramStructure: 'by-name',
      params: [CONNECTION_ID, optionalRecipientDid('are counted')],
      result: result('count', { type: 'integer', minimum: 0 }),
      errors: errorRefs(...COMMON_ERRORS),
    },
    {
      name: RpcMethod.RemoveMessages,
      summary: 'Acknowledges (deletes) messages by id; ids not queued are ignored.',
      paramStructure: 'by-name',
      params: [
        CONNECTION_ID,
        {
          name: 'messageIds',
          required: true,
          schema: {
            type: 'array',
            maxItems: MAX_LIST_LENGTH,
            items: identifier('A message id.'),
            description: `0 to ${MAX_LIST_LENGTH} message ids.`,
          },
        },
      ],
      result: result('removed', { type: 'boolean', const: true }),
      errors: errorRefs(...COMMON_ERRORS),
    },
    {
      name: RpcMethod.RemoveAllMessages,
      summary: "Deletes a connection's messages, pending and sending.",
      paramStructure: 'by-name',
      params: [CONNECTION_ID, optionalRecipientDid('are deleted')],
      result: result('removed', { type: 'boolean', const: true }),
      errors: errorRefs(...COMMON_ERRORS),
    },
    {
      name: RpcMethod.GetQueueStats,
      summary: "A connection's queue: pending and sending messages, their bytes, the oldest one's time (expired messages excluded).",
      paramStructure: 'by-name',
      params: [CONNECTION_ID],
      result: result('stats', {
        title: 'QueueStats',
        type: 'object',
        required: ['pending', 'sending', 'bytes', 'oldestReceivedAt'],
        additionalProperties: false,
        properties: {
          pending: { type: 'integer', minimum: 0 },
          sending: { type: 'integer', minimum: 0 },
          bytes: { type: 'integer', minimum: 0, description: 'Summed payload bytes of pending and sending messages.' },
          oldestReceivedAt: {
            type: ['string', 'null'],
            format: 'date-time',
            description: 'Of the oldest pending or sending message; null for an empty queue.',
          },
        },
      }),
      errors: errorRefs(...COMMON_ERRORS),
    },
    {
      name: RpcMethod.AddLiveSession,
      summary: "Makes the calling socket the holder of the connection's live session, fleet-wide.",
      description:
        'A newer session replaces an older one on any socket of any instance. What was in flight to the older one is pending again. The backlog from before is not pushed: take it with takeFromQueue.',
      paramStructure: 'by-name',
      params: [
        CONNECTION_ID,
        { name: 'sessionId', required: true, schema: identifier("The mediator's session.") },
        {
          name: 'reclaim',
          schema: {
            type: 'boolean',
            description: 'A re-registration after a reconnect: succeeds only if no session or the same sessionId is held.',
          },
        },
      ],
      result: result('added', {
        type: 'boolean',
        description: 'false when `reclaim` was refused (another session is held); nothing changed then.',
      }),
      errors: errorRefs(...COMMON_ERRORS),
    },
    {
      name: RpcMethod.GetLiveSession,
      summary: 'Whether a live session is held for the connection anywhere in the fleet.',
      paramStructure: 'by-name',
      params: [CONNECTION_ID],
      result: result('held', { type: 'boolean' }),
      errors: errorRefs(...COMMON_ERRORS),
    },
    {
      name: RpcMethod.RemoveLiveSession,
      summary: "Ends the connection's live session, wherever it is held.",
      paramStructure: 'by-name',
      params: [CONNECTION_ID, { name: 'sessionId', schema: identifier('Remove only if this session is the one held.') }],
      result: result('removed', { type: 'boolean', description: 'true if a session was removed.' }),
      errors: errorRefs(...COMMON_ERRORS),
    },
    {
      name: RpcMethod.Ping,
      summary: 'Answers "pong" (params, if any, are ignored).',
      paramStructure: 'either',
      params: [],
      result: result('pong', { type: 'string', const: 'pong' }),
      errors: errorRefs('ShuttingDown'),
    },
  ];
}

const MESSAGES_RECEIVED: OpenRpcMethod = {
  name: RpcNotification.MessagesReceived,
  summary: "Sent by the server to the socket holding a connection's live session: new messages, already marked sending.",
  description:
    'Only messages still pending at that moment are sent, so a concurrent take never gets the same message. Acknowledge them with removeMessages; unacknowledged ones are pending again after the redelivery timeout.',
  paramStructure: 'by-name',
  params: [
    { name: 'connectionId', required: true, schema: { type: 'string' } },
    { name: 'messages', required: true, schema: { type: 'array', minItems: 1, items: QUEUED_MESSAGE } },
  ],
};

/** What each error means, as the `message` of its catalogue entry. */
const ERROR_MEANINGS: Record<keyof typeof RpcErrorCode, string> = {
  ParseError: 'Parse error: the frame is not JSON (the response id is null).',
  InvalidRequest: `Invalid Request: not a JSON-RPC 2.0 request object, an empty batch, a batch of more than ${MAX_BATCH_REQUESTS} requests, or an id string longer than ${MAX_REQUEST_ID_LENGTH} characters.`,
  MethodNotFound: 'Method not found.',
  InvalidParams: 'Invalid params: the message and data.field name the offending parameter (e.g. "recipientDids[2]").',
  InternalError: 'Internal error: a bug; the server logs it.',
  StorageUnavailable:
    'Storage unavailable: PostgreSQL is unreachable or failing; nothing was changed. Retry later (an add with the same messageId).',
  PayloadTooLarge: "Payload too large: the payload is larger than the server's MAX_PAYLOAD_BYTES.",
  ShuttingDown: 'Server shutting down: the instance is draining. Reconnect, to another instance, and retry.',
  QueueFull:
    "Queue full: the connection's queue holds MAX_QUEUE_MESSAGES messages or MAX_QUEUE_BYTES bytes; the recipient must fetch first.",
  RateLimited:
    'Rate limited: the token is over its maxRequestsPerSecond on this instance; nothing was run. Retry after data.retryAfterMs milliseconds; the socket stays open.',
  Forbidden: "Forbidden: the token's role does not allow this method (data.method, data.role); nothing was run. Not retryable.",
};

function errorCatalogue(): Record<string, OpenRpcError> {
  const entries = Object.entries(RpcErrorCode) as [keyof typeof RpcErrorCode, number][];
  return Object.fromEntries(
    entries.map(([name, code]) => [name, { code, message: ERROR_MEANINGS[name], data: { retryable: RETRYABLE_ERROR_CODES.has(code) } }]),
  );
}

const DESCRIPTION = [
  'A shared message queue for DIDComm mediators: one WebSocket per mediator instance at path `/`, JSON-RPC 2.0 text frames (a request, a notification or a batch).',
  `Params are named (an object); unknown extra fields are ignored, and a param whose value is null counts as absent. A batch holds at most ${MAX_BATCH_REQUESTS} requests, answered as an array; its entries may run concurrently.`,
  'Every error carries `data.retryable` (a retryable call changed nothing and may be sent again) and, for -32602, `data.field`. The errors any request may get are in `components.errors`.',
  "Limits stated with a configuration variable are this server's settings; the extension keywords of the schemas are explained in `x-schema-keywords`. Notifications the server sends are in `x-notifications`.",
  '`rpc.discover` answers this document. `rpc.on` and `rpc.off` (positional params: event names) answer `{"<event>":"ok"}`: the subscription handshake of rpc-websockets clients; notifications go to session holders either way.',
].join('\n\n');

/**
 * The server's OpenRPC document, for a server with these limits: what `rpc.discover` answers, and the schemas the
 * server validates params with. docs/openrpc.json is this document for a server with the default configuration.
 */
export function buildOpenRpcDocument(limits: ServerLimits): OpenRpcDocument {
  return {
    openrpc: OPENRPC_VERSION,
    info: {
      title: 'DIDComm Message Pickup Repository',
      version: API_VERSION,
      description: DESCRIPTION,
      license: { name: 'Apache-2.0' },
    },
    methods: methods(limits),
    components: { errors: errorCatalogue() },
    'x-notifications': [MESSAGES_RECEIVED],
    'x-schema-keywords': Object.fromEntries(SCHEMA_KEYWORDS.map((definition) => [definition.keyword, definition.description])),
  };
}
