import { Module } from '@nestjs/common';
import { DeliveryModule } from '../delivery';
import { PushModule } from '../push';
import { SessionRegistryModule } from '../session-registry';
import { LiveSessionService } from './live-session.service';

/** Live sessions: registering, removing and ending them fleet-wide, and this instance's lease. */
@Module({
  imports: [SessionRegistryModule, DeliveryModule, PushModule],
  providers: [LiveSessionService],
  exports: [LiveSessionService],
})
export class LiveSessionModule {}
