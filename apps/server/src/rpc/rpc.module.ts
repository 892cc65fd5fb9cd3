import { Module } from '@nestjs/common';
import { LiveSessionModule } from '../live-session/live-session.module';
import { QueueModule } from '../queue/queue.module';
import { ConnectionGate } from './connection-gate';
import { RpcDispatcher } from './rpc-dispatcher.service';
import { RpcGateway } from './rpc.gateway';

@Module({
  imports: [QueueModule, LiveSessionModule],
  providers: [ConnectionGate, RpcDispatcher, RpcGateway],
  exports: [ConnectionGate],
})
export class RpcModule {}
