import { Injectable, Logger } from '@nestjs/common';
import { RpcMethod, TokenRole } from '@didcomm-mpr/protocol';
import { MetricsService } from '../metrics';
import { AccessGrant } from './access-grant';
import { RpcException } from './rpc.exception';

/** What a `monitor` token may call: reads that change nothing, `ping`, and the API document (it holds no data). */
const MONITOR_METHODS: ReadonlySet<string> = new Set<string>([
  RpcMethod.Ping,
  RpcMethod.GetAvailableMessageCount,
  RpcMethod.GetQueueStats,
  RpcMethod.GetLiveSession,
  RpcMethod.Discover,
]);
const KNOWN_METHODS: ReadonlySet<string> = new Set<string>(Object.values(RpcMethod));
/** A token over its rate, or calling outside its role, is logged at most this often (per token and reason). */
const LOG_EVERY_MS = 60_000;

function allowed(role: TokenRole, method: string): boolean {
  return role === 'mediator' || MONITOR_METHODS.has(method);
}

/**
 * The per-request access step of the dispatcher, before params are read: the token's rate (one request, whether
 * alone or in a batch, takes one token of its bucket) and its role. A refused request runs nothing. Unknown methods
 * pass the role check, to be answered "Method not found" like for everyone.
 */
@Injectable()
export class AccessPolicy {
  private readonly logger = new Logger('AccessControl');
  private readonly lastLogged = new Map<string, number>();

  constructor(private readonly metrics: MetricsService) {}

  /** Throws the RpcException the request is answered with when the token may not run it now. */
  check(method: string, grant: AccessGrant): void {
    const waitMs = grant.take();
    if (waitMs > 0) {
      this.refused(grant, 'rate_limited', `is over its maxRequestsPerSecond; calls get -32004 (next one in ${waitMs} ms)`);
      throw RpcException.rateLimited(waitMs);
    }
    if (KNOWN_METHODS.has(method) && !allowed(grant.role, method)) {
      this.refused(grant, 'forbidden', `(role ${grant.role}) called ${method}, which its role does not allow; calls get -32005`);
      throw RpcException.forbidden(method, grant.role);
    }
  }

  private refused(grant: AccessGrant, reason: 'rate_limited' | 'forbidden', what: string): void {
    this.metrics.accessDenied.inc({ token: grant.name, reason });
    const key = `${grant.name}\u0000${reason}`;
    const now = Date.now();
    if (now - (this.lastLogged.get(key) ?? -Infinity) < LOG_EVERY_MS) return;
    this.lastLogged.set(key, now);
    this.logger.warn(`Token ${grant.name} of tenant ${grant.tenant} ${what} (logged at most once a minute)`);
  }
}
