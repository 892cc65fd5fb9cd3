/**
 * Rules of the server's params that standard JSON Schema cannot say, as extension keywords of the schemas in the
 * OpenRPC document. Each definition has the shape of an ajv keyword definition (`ajv.addKeyword(definition)`), without
 * importing ajv, so a client may validate with the same schemas; the document describes each keyword under
 * `x-schema-keywords`.
 */

/** A JSON Schema object, loosely typed: the schemas here are data, checked by the tests against the meta-schema. */
export type JsonSchema = { [keyword: string]: unknown };

/** An extension keyword: its name, what it means, and (when it validates) how. */
export interface SchemaKeywordDefinition {
  keyword: string;
  /** What the keyword means, for the document's readers. */
  description: string;
  /** The JSON type(s) of data it applies to. */
  type?: 'string' | 'object';
  schemaType: 'number';
  /** Absent for an annotation that the server checks elsewhere (its error is then not -32602). */
  validate?: (limit: number, data: unknown) => boolean;
  /** The validator reports the keyword itself as the failing rule. */
  errors?: false;
}

const utf8 = new TextEncoder();

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

export const MAX_UTF8_BYTES_KEYWORD = 'x-maxUtf8Bytes';
export const MAX_DEPTH_KEYWORD = 'x-maxDepth';
export const MAX_JSON_BYTES_KEYWORD = 'x-maxJsonBytes';

/** PostgreSQL text cannot hold the NUL character: a standard `pattern` refuses it. */
export const NO_NUL_PATTERN = '^[^\\u0000]*$';

export const SCHEMA_KEYWORDS: readonly SchemaKeywordDefinition[] = [
  {
    keyword: MAX_UTF8_BYTES_KEYWORD,
    description: 'A string whose UTF-8 encoding is longer than this many bytes is refused (-32602).',
    type: 'string',
    schemaType: 'number',
    // A UTF-16 code unit takes at most 3 bytes in UTF-8 (a surrogate pair, 2 units, takes 4): most keys are short
    // enough to pass without being encoded. maxLength is checked first, so an encoding is a few kilobytes at most.
    validate: (limit, data) => (data as string).length * 3 <= limit || utf8.encode(data as string).length <= limit,
    errors: false,
  },
  {
    keyword: MAX_DEPTH_KEYWORD,
    description: 'An object or array nesting objects or arrays more than this many levels deep (itself being level 1) is refused (-32602).',
    type: 'object',
    schemaType: 'number',
    validate: (limit, data) => !nestedDeeperThan(data as object, limit),
    errors: false,
  },
  {
    keyword: MAX_JSON_BYTES_KEYWORD,
    description:
      'The value serialised as JSON (UTF-8) may be at most this many bytes: this server\'s configured limit. It is checked after the params are valid, and a larger value is refused with -32001 "Payload too large", not -32602.',
    schemaType: 'number',
  },
];

/** What `addSchemaKeywords` needs of an ajv instance (ajv is not a dependency of this package). */
export interface KeywordRegistry {
  addKeyword(definition: Omit<SchemaKeywordDefinition, 'description'>): unknown;
}

/** Teaches an ajv instance the extension keywords, so that it validates the document's schemas as the server does. */
export function addSchemaKeywords(ajv: KeywordRegistry): void {
  for (const { keyword, type, schemaType, validate, errors } of SCHEMA_KEYWORDS) {
    ajv.addKeyword(validate ? { keyword, type, schemaType, validate, errors } : { keyword, schemaType });
  }
}
