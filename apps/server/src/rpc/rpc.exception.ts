import type { TokenRole } from '@didcomm-mpr/protocol';

export enum RpcExceptionCode {
  InvalidParams = 'INVALID_PARAMS',
  ShuttingDown = 'SHUTTING_DOWN',
  RateLimited = 'RATE_LIMITED',
  Forbidden = 'FORBIDDEN',
}

/** A request refused by the RPC layer itself (before any service ran). */
export class RpcException extends Error {
  constructor(
    readonly code: RpcExceptionCode,
    message: string,
    /** For invalid params: the offending parameter. */
    readonly field?: string,
    /** For rate limited: how long until a call can succeed. For forbidden: the method and the token's role. */
    readonly details?: { retryAfterMs: number } | { method: string; role: TokenRole },
  ) {
    super(message);
    this.name = 'RpcException';
  }

  static invalidParam(field: string, problem: string): RpcException {
    return new RpcException(RpcExceptionCode.InvalidParams, `Invalid params: ${field} ${problem}`, field);
  }

  static rateLimited(retryAfterMs: number): RpcException {
    return new RpcException(
      RpcExceptionCode.RateLimited,
      `Rate limited: this token's maxRequestsPerSecond is used up; retry in ${retryAfterMs} ms`,
      undefined,
      {
        retryAfterMs,
      },
    );
  }

  static forbidden(method: string, role: TokenRole): RpcException {
    return new RpcException(RpcExceptionCode.Forbidden, `Forbidden: a ${role} token may not call ${method}`, undefined, { method, role });
  }
}
