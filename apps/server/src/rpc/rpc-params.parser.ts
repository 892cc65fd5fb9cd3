import {
  AddLiveSessionParams,
  AddMessageParams,
  GetAvailableMessageCountParams,
  GetQueueStatsParams,
  GetLiveSessionParams,
  PushNotificationToken,
  RemoveAllMessagesParams,
  RemoveLiveSessionParams,
  RemoveMessagesParams,
  TakeFromQueueParams,
} from '@didcomm-mpr/protocol';
import { RpcException } from './rpc.exception';

/** Identifiers are opaque to us but bounded, so a client bug cannot make us store megabytes of key. */
const MAX_ID_LENGTH = 512;
/** Two keys together must stay well within PostgreSQL's btree entry limit (about 2.7 kB). */
const MAX_ID_BYTES = 1024;
/** did:peer:2 DIDs with several services run to a few kilobytes. */
const MAX_DID_LENGTH = 8192;
const MAX_LIST_LENGTH = 10_000;
/** DIDComm messages nest a handful of levels; JSON nested thousands deep cannot even be serialised again. */
const MAX_PAYLOAD_DEPTH = 1000;

type Params = Record<string, unknown>;

function isPlainObject(value: unknown): value is Params {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Named params must be an object; a missing `params` is an empty object (methods then name what is missing). */
function object(params: unknown): Params {
  if (params === undefined) return {};
  if (!isPlainObject(params)) throw RpcException.invalidParam('params', 'must be an object of named parameters');
  return params;
}

function requiredString(params: Params, field: string, maxLength = MAX_ID_LENGTH): string {
  const value = params[field];
  if (value === undefined || value === null) throw RpcException.invalidParam(field, 'is required');
  if (typeof value !== 'string') throw RpcException.invalidParam(field, 'must be a string');
  if (value.length === 0) throw RpcException.invalidParam(field, 'must not be empty');
  if (value.length > maxLength) throw RpcException.invalidParam(field, `must be at most ${maxLength} characters`);
  assertStorable(field, value, maxLength === MAX_ID_LENGTH);
  return value;
}

/** PostgreSQL text cannot hold NUL, and keys have a byte bound: refuse here, not as a failed batch later. */
function assertStorable(field: string, value: string, isKey: boolean): void {
  if (value.includes('\u0000')) throw RpcException.invalidParam(field, 'must not contain the NUL character');
  if (isKey && Buffer.byteLength(value) > MAX_ID_BYTES) throw RpcException.invalidParam(field, `must be at most ${MAX_ID_BYTES} bytes in UTF-8`);
}

function optionalString(params: Params, field: string, maxLength = MAX_ID_LENGTH): string | undefined {
  return params[field] === undefined || params[field] === null ? undefined : requiredString(params, field, maxLength);
}

function stringArray(params: Params, field: string, minItems: number, maxLength: number): string[] {
  const value = params[field];
  if (value === undefined || value === null) throw RpcException.invalidParam(field, 'is required');
  if (!Array.isArray(value)) throw RpcException.invalidParam(field, 'must be an array of strings');
  if (value.length < minItems) throw RpcException.invalidParam(field, `must have at least ${minItems} item${minItems > 1 ? 's' : ''}`);
  if (value.length > MAX_LIST_LENGTH) throw RpcException.invalidParam(field, `must have at most ${MAX_LIST_LENGTH} items`);
  value.forEach((item, index) => {
    if (typeof item !== 'string' || item.length === 0) throw RpcException.invalidParam(`${field}[${index}]`, 'must be a non-empty string');
    if (item.length > maxLength) throw RpcException.invalidParam(`${field}[${index}]`, `must be at most ${maxLength} characters`);
    assertStorable(`${field}[${index}]`, item, maxLength === MAX_ID_LENGTH);
  });
  return value as string[];
}

function optionalPositiveInt(params: Params, field: string): number | undefined {
  const value = params[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw RpcException.invalidParam(field, 'must be an integer of at least 1');
  }
  return value;
}

function optionalBoolean(params: Params, field: string): boolean | undefined {
  const value = params[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw RpcException.invalidParam(field, 'must be a boolean');
  return value;
}

/** Whether `value` nests objects or arrays more than `limit` levels deep (iterative: no recursion to overflow). */
function nestedDeeperThan(value: object, limit: number): boolean {
  const stack: { node: object; depth: number }[] = [{ node: value, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (depth > limit) return true;
    for (const child of Object.values(node)) {
      if (typeof child === 'object' && child !== null) stack.push({ node: child as object, depth: depth + 1 });
    }
  }
  return false;
}

/** Existing mediators send tokens in several shapes; anything unusable is ignored, never an error. */
function pushToken(value: unknown): PushNotificationToken | undefined {
  if (!isPlainObject(value) || typeof value.type !== 'string' || value.type.length === 0) return undefined;
  return {
    type: value.type,
    token: typeof value.token === 'string' && value.token.length > 0 ? value.token : undefined,
    appId: typeof value.appId === 'string' && value.appId.length > 0 ? value.appId : undefined,
  };
}

/** Validation of each method's params; unknown extra fields are ignored. Pure functions, unit-tested. */
export const parseParams = {
  addMessage(raw: unknown): AddMessageParams {
    const params = object(raw);
    const connectionId = requiredString(params, 'connectionId');
    const recipientDids = stringArray(params, 'recipientDids', 1, MAX_DID_LENGTH);
    if (params.payload === undefined || params.payload === null) throw RpcException.invalidParam('payload', 'is required');
    if (!isPlainObject(params.payload)) throw RpcException.invalidParam('payload', 'must be a JSON object (the encrypted message)');
    if (nestedDeeperThan(params.payload, MAX_PAYLOAD_DEPTH)) {
      throw RpcException.invalidParam('payload', `must not be nested more than ${MAX_PAYLOAD_DEPTH} levels deep`);
    }
    return {
      connectionId,
      recipientDids,
      payload: params.payload,
      messageId: optionalString(params, 'messageId'),
      pushNotificationToken: pushToken(params.pushNotificationToken),
      ttlMs: optionalPositiveInt(params, 'ttlMs'),
    };
  },

  takeFromQueue(raw: unknown): TakeFromQueueParams {
    const params = object(raw);
    return {
      connectionId: requiredString(params, 'connectionId'),
      recipientDid: optionalString(params, 'recipientDid', MAX_DID_LENGTH),
      limit: optionalPositiveInt(params, 'limit'),
      limitBytes: optionalPositiveInt(params, 'limitBytes'),
      deleteMessages: optionalBoolean(params, 'deleteMessages'),
    };
  },

  getAvailableMessageCount(raw: unknown): GetAvailableMessageCountParams {
    const params = object(raw);
    return {
      connectionId: requiredString(params, 'connectionId'),
      recipientDid: optionalString(params, 'recipientDid', MAX_DID_LENGTH),
    };
  },

  removeMessages(raw: unknown): RemoveMessagesParams {
    const params = object(raw);
    return {
      connectionId: requiredString(params, 'connectionId'),
      messageIds: stringArray(params, 'messageIds', 0, MAX_ID_LENGTH),
    };
  },

  removeAllMessages(raw: unknown): RemoveAllMessagesParams {
    const params = object(raw);
    return {
      connectionId: requiredString(params, 'connectionId'),
      recipientDid: optionalString(params, 'recipientDid', MAX_DID_LENGTH),
    };
  },

  addLiveSession(raw: unknown): AddLiveSessionParams {
    const params = object(raw);
    return {
      connectionId: requiredString(params, 'connectionId'),
      sessionId: requiredString(params, 'sessionId'),
      reclaim: optionalBoolean(params, 'reclaim'),
    };
  },

  getQueueStats(raw: unknown): GetQueueStatsParams {
    const params = object(raw);
    return { connectionId: requiredString(params, 'connectionId') };
  },

  getLiveSession(raw: unknown): GetLiveSessionParams {
    const params = object(raw);
    return { connectionId: requiredString(params, 'connectionId') };
  },

  removeLiveSession(raw: unknown): RemoveLiveSessionParams {
    const params = object(raw);
    return {
      connectionId: requiredString(params, 'connectionId'),
      sessionId: optionalString(params, 'sessionId'),
    };
  },

  /** `rpc.on` / `rpc.off` take positional params: the event names. */
  eventNames(raw: unknown): string[] {
    if (!Array.isArray(raw) || raw.some((name) => typeof name !== 'string')) {
      throw RpcException.invalidParam('params', 'must be an array of event names');
    }
    return raw as string[];
  },
};
