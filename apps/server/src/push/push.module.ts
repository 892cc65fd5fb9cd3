import { Global, Module } from '@nestjs/common';
import { NoopPushAdapter } from './noop-push.adapter';
import { PushPort } from './push.port';

@Global()
@Module({
  providers: [{ provide: PushPort, useClass: NoopPushAdapter }],
  exports: [PushPort],
})
export class PushModule {}
