import { Module } from '@nestjs/common';
import { LiveSessionModule } from '../live-session';
import { QueueModule } from '../queue';
import { ConnectionGate } from './connection-gate';
import { OPENRPC_PROVIDERS } from './openrpc-document.provider';
import { RpcDispatcher } from './rpc-dispatcher.service';
import { RpcGateway } from './rpc.gateway';

@Module({
  imports: [QueueModule, LiveSessionModule],
  providers: [ConnectionGate, ...OPENRPC_PROVIDERS, RpcDispatcher, RpcGateway],
  exports: [ConnectionGate],
})
export class RpcModule {}
