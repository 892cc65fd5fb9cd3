import { Module } from '@nestjs/common';
import { LiveSessionModule } from '../live-session';
import { QueueModule } from '../queue';
import { ConnectionGate } from './connection-gate';
import { RpcDispatcher } from './rpc-dispatcher.service';
import { RpcGateway } from './rpc.gateway';

@Module({
  imports: [QueueModule, LiveSessionModule],
  providers: [ConnectionGate, RpcDispatcher, RpcGateway],
  exports: [ConnectionGate],
})
export class RpcModule {}
