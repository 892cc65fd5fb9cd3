import * as Client from '@didcomm-mpr/client';
import * as Protocol from '@didcomm-mpr/protocol';

/** The client's copies of the protocol constants (types: protocol-parity.types.ts) are the protocol's. */
describe('client copy of the wire contract', () => {
  it('has the same method names, notifications, error codes and retryable codes', () => {
    expect(Client.RpcMethod).toEqual(Protocol.RpcMethod);
    expect(Client.RpcNotification).toEqual(Protocol.RpcNotification);
    expect(Client.RpcErrorCode).toEqual(Protocol.RpcErrorCode);
    expect([...Client.RETRYABLE_ERROR_CODES].sort()).toEqual([...Protocol.RETRYABLE_ERROR_CODES].sort());
  });
});
