import { Module } from '@nestjs/common';
import { LiveSessionModule } from '../live-session';
import { QueueModule } from '../queue';
import { AccessPolicy } from './access.policy';
import { AccessTokenRegistry } from './access-token.registry';
import { ConnectionGate } from './connection-gate';
import { OPENRPC_PROVIDERS } from './openrpc-document.provider';
import { RpcDispatcher } from './rpc-dispatcher.service';
import { RpcGateway } from './rpc.gateway';

@Module({
  imports: [QueueModule, LiveSessionModule],
  providers: [ConnectionGate, ...OPENRPC_PROVIDERS, AccessTokenRegistry, AccessPolicy, RpcDispatcher, RpcGateway],
  exports: [ConnectionGate, AccessTokenRegistry],
})
export class RpcModule {}
