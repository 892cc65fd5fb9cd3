export enum RpcExceptionCode {
  InvalidParams = 'INVALID_PARAMS',
  ShuttingDown = 'SHUTTING_DOWN',
}

/** A request refused by the RPC layer itself (before any service ran). */
export class RpcException extends Error {
  constructor(
    readonly code: RpcExceptionCode,
    message: string,
    /** For invalid params: the offending parameter. */
    readonly field?: string,
  ) {
    super(message);
    this.name = 'RpcException';
  }

  static invalidParam(field: string, problem: string): RpcException {
    return new RpcException(RpcExceptionCode.InvalidParams, `Invalid params: ${field} ${problem}`, field);
  }
}
