import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A token as a test or the bench hands it out: the secret itself, and what the server's tokens file says of it. */
export interface TestToken {
  name: string;
  /** The bearer token (kept by the client; the file holds only its SHA-256). */
  token: string;
  tenant: string;
  role: 'mediator' | 'monitor';
  maxRequestsPerSecond?: number;
}

/** A fresh random token with the given name, tenant and role. */
export function testToken(name: string, tenant: string, role: TestToken['role'] = 'mediator', maxRequestsPerSecond?: number): TestToken {
  return {
    name,
    token: randomBytes(24).toString('base64url'),
    tenant,
    role,
    ...(maxRequestsPerSecond !== undefined ? { maxRequestsPerSecond } : {}),
  };
}

/** The Authorization header of a token. */
export function bearer(token: TestToken): { Authorization: string } {
  return { Authorization: `Bearer ${token.token}` };
}

/**
 * Writes the server's AUTH_TOKENS_FILE for these tokens (their digests, never the tokens), as a deploy tool would:
 * into a temporary file of the same directory, then renamed over the file, so the server never reads half a file.
 */
export function writeTokensFile(file: string, tokens: TestToken[]): void {
  const body = {
    tokens: tokens.map(({ name, token, tenant, role, maxRequestsPerSecond }) => ({
      name,
      sha256: createHash('sha256').update(token, 'utf8').digest('hex'),
      tenant,
      role,
      ...(maxRequestsPerSecond !== undefined ? { maxRequestsPerSecond } : {}),
    })),
  };
  writeFileAtomically(file, `${JSON.stringify(body, null, 2)}\n`);
}

/** Replaces `file` with `text` by a rename, the way editors and deploy tools do. */
export function writeFileAtomically(file: string, text: string): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  fs.writeFileSync(temporary, text);
  fs.renameSync(temporary, file);
}
