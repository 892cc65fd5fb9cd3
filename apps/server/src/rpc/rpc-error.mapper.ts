import { RETRYABLE_ERROR_CODES, RpcErrorCode, RpcErrorObject } from '@didcomm-mpr/protocol';
import { StorageException, StorageExceptionCode } from '../database';
import { QueueException, QueueExceptionCode } from '../queue';
import { RpcException, RpcExceptionCode } from './rpc.exception';

export function rpcError(code: number, message: string, extra?: Record<string, unknown>): RpcErrorObject {
  return { code, message, data: { retryable: RETRYABLE_ERROR_CODES.has(code), ...extra } };
}

/**
 * The one place where module exceptions become JSON-RPC errors. An error nobody anticipated is an internal
 * error whose message does not leak internals; the caller logs it.
 */
export function toRpcError(error: unknown): { error: RpcErrorObject; unexpected: boolean } {
  if (error instanceof RpcException) {
    switch (error.code) {
      case RpcExceptionCode.InvalidParams:
        return { error: rpcError(RpcErrorCode.InvalidParams, error.message, { field: error.field }), unexpected: false };
      case RpcExceptionCode.ShuttingDown:
        return { error: rpcError(RpcErrorCode.ShuttingDown, error.message), unexpected: false };
      case RpcExceptionCode.RateLimited:
        return { error: rpcError(RpcErrorCode.RateLimited, error.message, error.details), unexpected: false };
      case RpcExceptionCode.Forbidden:
        return { error: rpcError(RpcErrorCode.Forbidden, error.message, error.details), unexpected: false };
    }
  }
  if (error instanceof QueueException) {
    switch (error.code) {
      case QueueExceptionCode.PayloadTooLarge:
        return { error: rpcError(RpcErrorCode.PayloadTooLarge, `Payload too large: ${error.message}`), unexpected: false };
      case QueueExceptionCode.QueueFull:
        return { error: rpcError(RpcErrorCode.QueueFull, `Queue full: ${error.message}`), unexpected: false };
    }
  }
  if (error instanceof StorageException && error.code === StorageExceptionCode.Unavailable) {
    return { error: rpcError(RpcErrorCode.StorageUnavailable, 'Storage unavailable, retry later'), unexpected: false };
  }
  return { error: rpcError(RpcErrorCode.InternalError, 'Internal error'), unexpected: true };
}
