import { createHash, timingSafeEqual } from 'node:crypto';
import { IncomingMessage } from 'node:http';

/**
 * Checks the WebSocket upgrade's `Authorization: Bearer <token>` header, or `?token=` for tools such as
 * wscat. Tokens are compared as SHA-256 digests with `timingSafeEqual`, against every configured token, so
 * neither a token's content nor its length shows in the timing.
 */
export class BearerTokenGuard {
  private readonly digests: Buffer[];

  constructor(tokens: string[]) {
    this.digests = tokens.map((token) => createHash('sha256').update(token).digest());
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  allows(request: IncomingMessage): boolean {
    if (!this.enabled) return true;
    const presented = this.presentedToken(request);
    if (presented === undefined) return false;
    const digest = createHash('sha256').update(presented).digest();
    let match = false;
    for (const candidate of this.digests) match = timingSafeEqual(candidate, digest) || match;
    return match;
  }

  private presentedToken(request: IncomingMessage): string | undefined {
    const header = request.headers.authorization;
    if (header) {
      const match = /^Bearer\s+(.+)$/i.exec(header.trim());
      return match ? match[1].trim() : undefined;
    }
    const query = new URL(request.url ?? '/', 'http://localhost').searchParams.get('token');
    return query ?? undefined;
  }
}
