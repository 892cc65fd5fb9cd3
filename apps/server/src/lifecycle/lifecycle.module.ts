import { Global, Module } from '@nestjs/common';
import { InstanceLifecycle } from './instance-lifecycle';

/** Global, like config and metrics: every module may read or mark the instance's lifecycle, and it imports nothing. */
@Global()
@Module({
  providers: [InstanceLifecycle],
  exports: [InstanceLifecycle],
})
export class LifecycleModule {}
