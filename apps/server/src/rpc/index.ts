/** The RPC module's facade: the WebSocket endpoint and what bootstrap needs to serve it. */
export { RpcModule } from './rpc.module';
export { ConnectionGate } from './connection-gate';
export { AccessTokenRegistry } from './access-token.registry';
export { JsonRpcWsAdapter } from './json-rpc-ws.adapter';
