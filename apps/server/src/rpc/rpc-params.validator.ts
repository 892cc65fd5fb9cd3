import Ajv, { ErrorObject, ValidateFunction } from 'ajv';
import {
  addSchemaKeywords,
  ContentDescriptor,
  JsonSchema,
  MAX_DEPTH_KEYWORD,
  MAX_UTF8_BYTES_KEYWORD,
  NO_NUL_PATTERN,
  OpenRpcDocument,
  PushNotificationToken,
  RpcMethods,
} from '@didcomm-mpr/protocol';
import { RpcException } from './rpc.exception';

/** The methods whose params are named and described in the document. */
type NamedParamsMethod = Exclude<keyof RpcMethods, 'ping' | 'rpc.on' | 'rpc.off' | 'rpc.discover'>;

interface CompiledParam {
  name: string;
  required: boolean;
  schema: JsonSchema;
  validate: ValidateFunction;
}

type Params = Record<string, unknown>;

function isPlainObject(value: unknown): value is Params {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `recipientDids` + `/2` → `recipientDids[2]`: the field named in the error, as clients know it. */
function fieldOf(param: string, instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .reduce(
      (field, segment) => (/^\d+$/.test(segment) ? `${field}[${segment}]` : `${field}.${segment.replace(/~1/g, '/').replace(/~0/g, '~')}`),
      param,
    );
}

const ARTICLE: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  object: 'a JSON object',
  array: 'an array',
};

/** The value of the failed rule in the param's schema (`#/items/maxLength` → 512): the limit to name. */
function ruleValue(schema: JsonSchema, schemaPath: string): unknown {
  return schemaPath
    .split('/')
    .slice(1)
    .reduce<unknown>(
      (node, segment) => (node as Record<string, unknown> | undefined)?.[segment.replace(/~1/g, '/').replace(/~0/g, '~')],
      schema,
    );
}

/** The problem in words, from the failed rule and its value in the schema. */
function problemOf(error: ErrorObject, schema: JsonSchema): string {
  const rule = ruleValue(schema, error.schemaPath);
  const limit = rule as number;
  switch (error.keyword) {
    case 'type':
      return `must be ${String(error.params.type)
        .split(',')
        .map((type) => ARTICLE[type] ?? type)
        .join(' or ')}`;
    case 'required':
      return 'is required';
    case 'minLength':
      return limit === 1 ? 'must not be empty' : `must be at least ${limit} characters`;
    case 'maxLength':
      return `must be at most ${limit} characters`;
    case 'pattern':
      return rule === NO_NUL_PATTERN ? 'must not contain the NUL character' : `must match ${String(rule)}`;
    case 'minimum':
      return `must be at least ${limit}`;
    case 'maximum':
      return `must be at most ${limit}`;
    case 'minItems':
      return `must have at least ${limit} item${limit === 1 ? '' : 's'}`;
    case 'maxItems':
      return `must have at most ${limit} items`;
    case MAX_UTF8_BYTES_KEYWORD:
      return `must be at most ${limit} bytes in UTF-8`;
    case MAX_DEPTH_KEYWORD:
      return `must not be nested more than ${limit} levels deep`;
    default:
      return error.message ?? `fails ${error.keyword}`;
  }
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

/** What a valid param's value becomes in the params handed to the services (the value itself, unless listed here). */
const NORMALISE: Record<string, (value: unknown) => unknown> = { pushNotificationToken: pushToken };

/**
 * Validates each method's params with the JSON Schemas of the server's OpenRPC document, compiled once (ajv) when the
 * server starts: the document a client reads is the one the server checks with. Params are checked one by one in the
 * document's order, so the first offending param (in that order) is the one named in `data.field`; a null value
 * counts as absent; unknown extra fields are dropped.
 */
export class RpcParamsValidator {
  private readonly methods = new Map<string, CompiledParam[]>();

  constructor(document: OpenRpcDocument) {
    // String lengths count code points, as JSON Schema and PostgreSQL do. The first error is enough (one field is named).
    const ajv = new Ajv({ allErrors: false, strict: true });
    addSchemaKeywords(ajv);
    for (const method of document.methods) {
      if (method.paramStructure !== 'by-name') continue;
      this.methods.set(
        method.name,
        method.params.map((param: ContentDescriptor) => ({
          name: param.name,
          required: param.required === true,
          schema: param.schema,
          validate: ajv.compile(param.schema),
        })),
      );
    }
  }

  /** The method's params, validated and normalised; throws an invalid-params RpcException naming the first offending field. */
  parse<M extends NamedParamsMethod>(method: M, raw: unknown): RpcMethods[M]['params'] {
    const params = this.methods.get(method);
    if (!params) throw new Error(`No params schema for ${method}`);
    if (raw !== undefined && !isPlainObject(raw)) throw RpcException.invalidParam('params', 'must be an object of named parameters');
    const given = (raw ?? {}) as Params;
    const parsed: Params = {};
    for (const { name, required, schema, validate } of params) {
      const value = given[name];
      if (value === undefined || value === null) {
        if (required) throw RpcException.invalidParam(name, 'is required');
        parsed[name] = undefined;
        continue;
      }
      if (!validate(value)) {
        const error = validate.errors![0];
        throw RpcException.invalidParam(fieldOf(name, error.instancePath), problemOf(error, schema));
      }
      parsed[name] = NORMALISE[name] ? NORMALISE[name](value) : value;
    }
    return parsed as unknown as RpcMethods[M]['params'];
  }

  /** `rpc.on` / `rpc.off` (rpc-websockets' handshake, not in the document) take positional params: the event names. */
  parseEventNames(raw: unknown): string[] {
    if (!Array.isArray(raw) || raw.some((name) => typeof name !== 'string')) {
      throw RpcException.invalidParam('params', 'must be an array of event names');
    }
    return raw as string[];
  }
}
