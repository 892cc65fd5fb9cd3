import type { TokenRole } from '@didcomm-mpr/protocol';
import { AccessToken, DEFAULT_TENANT } from '../config';
import { TokenBucket } from './token-bucket';

/**
 * What one configured token may do, shared by every socket opened with it on this instance: its tenant and role, and
 * its rate limit's bucket (summed over those sockets). A reload that keeps the token with the same tenant and role
 * updates this object in place (name, rate), so open sockets keep working; one that removes the token, or changes its
 * tenant or role, marks it revoked, and the gateway closes its sockets.
 */
export class AccessGrant {
  private bucket: TokenBucket | undefined;
  private wasRevoked = false;

  private constructor(
    /** In logs and metrics; the token itself is known here only as its digest. */
    public name: string,
    readonly sha256: string | undefined,
    readonly tenant: string,
    readonly role: TokenRole,
    maxRequestsPerSecond: number | undefined,
  ) {
    this.bucket = maxRequestsPerSecond === undefined ? undefined : new TokenBucket(maxRequestsPerSecond);
  }

  static of(token: AccessToken): AccessGrant {
    return new AccessGrant(token.name, token.sha256, token.tenant, token.role, token.maxRequestsPerSecond);
  }

  /** No authentication configured: everyone is a mediator of the default tenant, without a limit. */
  static anonymous(): AccessGrant {
    return new AccessGrant('anonymous', undefined, DEFAULT_TENANT, 'mediator', undefined);
  }

  get revoked(): boolean {
    return this.wasRevoked;
  }

  /** Whether `token` (from a reload) grants exactly this tenant and role, so that open sockets may keep this grant. */
  sameAccess(token: AccessToken): boolean {
    return token.sha256 === this.sha256 && token.tenant === this.tenant && token.role === this.role;
  }

  /** A reload kept the token: its name and rate may have changed. */
  update(token: AccessToken): void {
    this.name = token.name;
    if (token.maxRequestsPerSecond === undefined) this.bucket = undefined;
    else if (this.bucket) this.bucket.setRate(token.maxRequestsPerSecond);
    else this.bucket = new TokenBucket(token.maxRequestsPerSecond);
  }

  revoke(): void {
    this.wasRevoked = true;
  }

  /** One request: 0 if within the rate, otherwise the milliseconds to wait before one would be. */
  take(): number {
    return this.bucket ? this.bucket.take() : 0;
  }
}
