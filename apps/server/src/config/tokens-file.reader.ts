import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { TokenRole } from '@didcomm-mpr/protocol';
import { AccessToken } from './app-config';
import { DEFAULT_TENANT } from './connection-ref';
import { ConfigError } from './config.error';

const VARIABLE = 'AUTH_TOKENS_FILE';
const ROLES: readonly TokenRole[] = ['mediator', 'monitor'];
const FIELDS = new Set(['name', 'sha256', 'tenant', 'role', 'maxRequestsPerSecond']);
/**
 * Names and tenants end up in log lines, metric labels and Redis keys: a short, plain alphabet keeps all three
 * readable and bounded, and leaves NUL, ':' and braces (the separators of keys) out.
 */
const LABEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;
const MAX_RATE = 1_000_000;

/** SHA-256 of a bearer token, lower-case hex: what the tokens file stores, and what a presented token is compared as. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * The tokens of AUTH_TOKENS, as the tokens file would describe them: mediators of the default tenant, each named by
 * a short prefix of its digest (logs and metrics must tell them apart without showing them).
 */
export function legacyTokens(tokens: string[]): AccessToken[] {
  return tokens.map((token) => {
    const sha256 = tokenDigest(token);
    return { name: `token-${sha256.slice(0, 8)}`, sha256, tenant: DEFAULT_TENANT, role: 'mediator', maxRequestsPerSecond: undefined };
  });
}

/**
 * Reads and validates the tokens file (see README "Security"). Throws a `ConfigError` naming AUTH_TOKENS_FILE, the
 * file, the entry (index and name) and the field at the first problem; at boot that stops the server, on a reload the
 * tokens in force stay. Unknown fields are refused: a misspelt `maxRequestsPerSecond` must not silently lift a limit.
 */
export function readTokensFile(file: string): AccessToken[] {
  return parseTokensFile(readTokensText(file), file);
}

/** The file's text; a `ConfigError` naming AUTH_TOKENS_FILE if it cannot be read. */
export function readTokensText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(
      VARIABLE,
      `names a file that cannot be read: "${file}" (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
    );
  }
}

/** Validates the text of the tokens file `file` (named in the messages), as `readTokensFile` describes. */
export function parseTokensFile(text: string, file: string): AccessToken[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(VARIABLE, `"${file}" is not JSON: ${(error as Error).message}`);
  }
  if (!isObject(parsed) || !Array.isArray(parsed.tokens)) {
    throw new ConfigError(VARIABLE, `"${file}" must be a JSON object with a "tokens" array`);
  }
  const names = new Set<string>();
  const digests = new Set<string>();
  return parsed.tokens.map((entry: unknown, index: number): AccessToken => {
    const at = (field?: string, name?: unknown) =>
      `"${file}": tokens[${index}]${typeof name === 'string' && LABEL.test(name) ? ` ("${name}")` : ''}${field ? ` field "${field}"` : ''}`;
    if (!isObject(entry)) throw new ConfigError(VARIABLE, `${at()} must be an object`);
    const fail = (field: string, problem: string) => new ConfigError(VARIABLE, `${at(field, entry.name)} ${problem}`);
    for (const field of Object.keys(entry))
      if (!FIELDS.has(field)) throw fail(field, `is not a known field (known: ${[...FIELDS].join(', ')})`);
    const label = (field: 'name' | 'tenant'): string => {
      const value = entry[field];
      if (value === undefined) throw fail(field, 'is required');
      if (typeof value !== 'string' || !LABEL.test(value)) {
        throw fail(field, 'must be 1 to 64 characters of letters, digits, ".", "_" or "-", starting with a letter or digit');
      }
      return value;
    };
    const name = label('name');
    if (names.has(name)) throw fail('name', 'repeats the name of an earlier entry');
    names.add(name);
    if (typeof entry.sha256 !== 'string' || !SHA256_HEX.test(entry.sha256)) {
      throw fail('sha256', 'must be the SHA-256 of the token as 64 hexadecimal characters (`npm run -s token-digest` prints it)');
    }
    const sha256 = entry.sha256.toLowerCase();
    if (digests.has(sha256)) throw fail('sha256', 'repeats the digest of an earlier entry: one token, one entry');
    digests.add(sha256);
    const tenant = label('tenant');
    if (!ROLES.includes(entry.role as TokenRole)) throw fail('role', `must be one of ${ROLES.map((role) => `"${role}"`).join(', ')}`);
    const rate = entry.maxRequestsPerSecond;
    if (rate !== undefined && (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 1 || rate > MAX_RATE)) {
      throw fail('maxRequestsPerSecond', `must be an integer from 1 to ${MAX_RATE} (or left out: no limit)`);
    }
    return { name, sha256, tenant, role: entry.role as TokenRole, maxRequestsPerSecond: rate as number | undefined };
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
